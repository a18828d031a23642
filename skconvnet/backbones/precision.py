"""A compute precision as the Keras dtype policy that computes in it."""


def dtype_policy(precision):
    """The Keras dtype policy that computes in ``precision`` (variables stay float32)."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision]
