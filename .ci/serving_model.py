"""Write a small exported model and photos for the serving install to predict.

``python .ci/serving_model.py FOLDER`` writes ``FOLDER/model.onnx`` (VGG16 cut at block1_pool,
average-pooled, a logistic regression), ``FOLDER/photos/`` (PNGs of several sizes) and
``FOLDER/expected.csv``: each photo's label and probabilities as the fitted pipeline predicts
them, in the columns of ``predict``'s CSV.
"""

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import skconvnet

folder = Path(sys.argv[1])
rng = np.random.default_rng(0)
# dark and bright photos: two classes any features separate
images = [rng.integers(0, 100, (48, 64, 3)) + 155 * (i % 2) for i in range(12)]
labels = np.array(["dark", "bright"] * 6)
model = make_pipeline(
    skconvnet.VGGFeatureExtractor(weights=None, layer="block1_pool", pooling="avg",
                                  image_size=(32, 32)),
    LogisticRegression(),
)
(folder / "photos").mkdir(parents=True)
paths = []
for i, image in enumerate(images):
    path = folder / "photos" / f"photo_{i:02d}.png"
    Image.fromarray(image.astype(np.uint8)).resize((64 + 8 * i, 48 + 4 * i)).save(path)
    paths.append(str(path))
model.fit(paths, labels)
skconvnet.to_onnx(model, folder / "model.onnx")
columns = [f"probability_{name}" for name in model.classes_]
with open(folder / "expected.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(["photo", "label", *columns])
    for path, label, row in zip(paths, model.predict(paths), model.predict_proba(paths)):
        writer.writerow([Path(path).name, label, *row])
