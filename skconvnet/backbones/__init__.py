"""The networks: one typed spec per backbone, its weights, its Keras graph (cut, folded,
at a precision) and the checks of the parameters that name its layers."""
