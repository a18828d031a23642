"""
Where the model looked
======================

Heatmaps of the evidence for the predicted class, over cats and dogs photos: the exact class
activation map of a pipeline (average-pooled VGG16 features and a logistic regression) and
Grad-CAM of a :class:`~skconvnet.FineTunedConvNetClassifier`, both on the shared
ImageNet-grade VGG16 base, each trained on 200 photos at 150x150.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvnet import (
    FineTunedConvNetClassifier,
    VGGFeatureExtractor,
    explain,
    load_image_folder,
    plot_explanations,
)

try:
    EXAMPLES = Path(__file__).resolve().parent
except NameError:  # run by the docs build, from this folder
    EXAMPLES = Path.cwd()
SHARED = EXAMPLES.parents[1] / "shared"
PHOTOS = SHARED / "data" / "cats_and_dogs"
WEIGHTS = SHARED / "weights" / "vgg16_imagenet_notop.weights.h5"

train_paths, train_labels = load_image_folder(PHOTOS / "train", max_per_class=100)
test_paths, test_labels = load_image_folder(PHOTOS / "validation", max_per_class=6)
precision = os.environ.get("SKCONVNET_PRECISION", "bfloat16")

# %%
# The exact map of a linear pipeline
# ----------------------------------
# With ``pooling="avg"`` the features are the mean of ``block4_pool``'s activation over its
# 9x9 positions, and the scaler and the logistic regression are linear: the class score is
# the mean of the scores of the positions, so the map is exact and costs one forward pass.

pipeline = make_pipeline(
    VGGFeatureExtractor(layer="block4_pool", pooling="avg", weights=WEIGHTS,
                        precision=precision),
    StandardScaler(), LogisticRegression(max_iter=2000),
).fit(train_paths, train_labels)
heatmaps = explain(pipeline, test_paths)
print(f"{heatmaps.shape[0]} heatmaps of {heatmaps.shape[1]}x{heatmaps.shape[2]} pixels; "
      f"accuracy {pipeline.score(test_paths, test_labels):.3f}")
plot_explanations(pipeline, test_paths, test_labels)
plt.show()

# %%
# Grad-CAM of a fine-tuned classifier
# -----------------------------------
# The classifier's head is fit on the frozen base (no fine-tuning epochs, to keep this
# example short); Grad-CAM weights the channels of its last convolutional layer,
# ``block5_conv3``, by the gradient of the class's logit.

classifier = FineTunedConvNetClassifier(
    weights=WEIGHTS, image_size=(150, 150), fine_tune_epochs=0, augmentation=False,
    precision=precision, random_state=0,
).fit(train_paths, train_labels)
print(f"accuracy {classifier.score(test_paths, test_labels):.3f}")
plot_explanations(classifier, test_paths, test_labels)
plt.show()
