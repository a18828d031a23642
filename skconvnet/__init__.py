"""skconvnet: pretrained convnets as scikit-learn estimators.

Importing the package loads no deep-learning backend; Keras is imported on first fit.
"""

from ._classifier import BOOK_RECIPE, FineTunedConvNetClassifier
from ._dask import dask_transform
from ._extractor import ConvNetFeatureExtractor, VGGFeatureExtractor
from ._persistence import TRUSTED_TYPES
from ._regressor import FineTunedConvNetRegressor
from .audit.duplicates import find_duplicates
from .audit.labels import find_label_issues
from .audit.outliers import find_outliers
from .backbones.specs import list_backbones, list_layers
from .compute.cache import clear_cache, set_cache_budget
from .datasets import load_image_csv, load_image_folder, load_images
from .export.converters import to_onnx
from .heatmaps.explain import explain
from .heatmaps.figures import plot_explanations
from .report.diagnostics import (
    confident_errors,
    plot_confident_errors,
    plot_training_curves,
)
from .report.layers import layer_scores, plot_layer_scores

# General names beside the convnet ones, for backbones that are not convnets (DINOv2, ViT...):
# the same classes, so pickles, reprs and defaults stay as they are.
ImageFeatureExtractor = ConvNetFeatureExtractor
FineTunedImageClassifier = FineTunedConvNetClassifier
FineTunedImageRegressor = FineTunedConvNetRegressor

__version__ = "0.3.0"

__all__ = [
    "BOOK_RECIPE",
    "TRUSTED_TYPES",
    "ConvNetFeatureExtractor",
    "FineTunedConvNetClassifier",
    "FineTunedConvNetRegressor",
    "FineTunedImageClassifier",
    "FineTunedImageRegressor",
    "ImageFeatureExtractor",
    "VGGFeatureExtractor",
    "__version__",
    "clear_cache",
    "confident_errors",
    "dask_transform",
    "explain",
    "find_duplicates",
    "find_label_issues",
    "find_outliers",
    "layer_scores",
    "list_backbones",
    "list_layers",
    "load_image_csv",
    "load_image_folder",
    "load_images",
    "plot_confident_errors",
    "plot_explanations",
    "plot_layer_scores",
    "plot_training_curves",
    "set_cache_budget",
    "to_onnx",
]
