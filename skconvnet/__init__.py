"""skconvnet: pretrained convnets as scikit-learn estimators.

Importing the package loads no deep-learning backend; Keras is imported on first fit.
"""

from ._classifier import FineTunedConvNetClassifier
from ._extractor import VGGFeatureExtractor

__version__ = "0.1.0"

__all__ = ["FineTunedConvNetClassifier", "VGGFeatureExtractor", "__version__"]
