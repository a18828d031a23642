"""Images in: checks and adapters for every accepted X, image sources that decode files
ahead in threads, and decoding itself. Importable without Keras (the ONNX predict path
uses it)."""
