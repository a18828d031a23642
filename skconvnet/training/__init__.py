"""The fine-tuned classifier's parts: the training plan, the network with its head, the
stored outputs of frozen layers, and the logistic probe."""
