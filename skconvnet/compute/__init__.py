"""Running the networks: activations extracted shallow to deep and pooled per batch, the
activation cache that lets a deeper layer resume from a shallower one, int8 segments."""
