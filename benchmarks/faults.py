"""Faults injected into a copy of the cats/dogs folders, for measuring the audit.

- flipped labels: a share of the training photos filed under the other class;
- leaked copies: training photos re-saved at JPEG quality 50-80, resized by 0.7-0.9 and
  cropped by up to 5% on each side, put into the test folder;
- foreign photos: random textures and screenshot-like pictures filed under one class.

Photos are linked (copied where links are not allowed), never modified.
"""

import io
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def build(root, train, test, *, flip=0.05, copies=20, foreign=10, foreign_class="cats",
          seed=0):
    """Write ``root/train`` and ``root/test`` with the faults injected.

    Parameters
    ----------
    root : path
        An empty folder.
    train, test : (list of Path, list of str)
        The clean photos and their classes.

    Returns
    -------
    faults : dict
        ``flipped``: training file names filed under the other class; ``copies``: test file
        name -> the training file it copies; ``foreign``: the foreign file names.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    train_paths, train_labels = train
    classes = sorted(set(train_labels))
    flipped = set(rng.choice(len(train_paths), size=round(flip * len(train_paths)),
                             replace=False).tolist())
    faults = {"flipped": [], "copies": {}, "foreign": []}
    for i, (path, label) in enumerate(zip(train_paths, train_labels)):
        if i in flipped:
            label = next(other for other in classes if other != label)
            faults["flipped"].append(path.name)
        _link(path, root / "train" / label / path.name)
    for path, label in zip(*test):
        _link(path, root / "test" / label / path.name)
    for i in rng.choice(len(train_paths), size=copies, replace=False):
        source = train_paths[i]
        name = f"copy_of_{source.stem}.jpg"
        (root / "test" / train_labels[i] / name).write_bytes(resaved(source, rng))
        faults["copies"][name] = source.name
    for k in range(foreign):
        name = f"foreign_{k}.png"
        picture = texture(rng) if k % 2 == 0 else screenshot(rng)
        picture.save(root / "train" / foreign_class / name)
        faults["foreign"].append(name)
    return faults


def resaved(path, rng):
    """JPEG bytes of ``path`` cropped by up to 5% a side, resized by 0.7-0.9, re-saved at
    quality 50-80."""
    picture = Image.open(path).convert("RGB")
    width, height = picture.size
    left, top, right, bottom = rng.uniform(0, 0.05, size=4)
    picture = picture.crop((round(left * width), round(top * height),
                            round((1 - right) * width), round((1 - bottom) * height)))
    scale = rng.uniform(0.7, 0.9)
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                             Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=int(rng.integers(50, 81)))
    return buffer.getvalue()


def texture(rng, size=(400, 300)):
    """Smoothed coloured noise: a texture that is no photo of anything."""
    noise = rng.integers(0, 256, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    picture = Image.fromarray(noise).resize(size, Image.BICUBIC)
    return picture.filter(ImageFilter.GaussianBlur(rng.uniform(1, 4)))


def screenshot(rng, size=(400, 300)):
    """A window of a program: title bar, buttons and lines of grey "text" on white."""
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    bar = tuple(int(v) for v in rng.integers(30, 200, size=3))
    draw.rectangle((0, 0, size[0], 24), fill=bar)
    y = 40
    while y < size[1] - 20:
        width = int(rng.integers(size[0] // 3, size[0] - 30))
        draw.rectangle((15, y, 15 + width, y + 7), fill=(90, 90, 90))
        y += int(rng.integers(14, 26))
    for x in (size[0] - 140, size[0] - 70):
        draw.rectangle((x, size[1] - 34, x + 60, size[1] - 12), outline="black",
                       fill=(225, 225, 225))
    return picture


def _link(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.abspath(source), target)
    except OSError:
        shutil.copyfile(source, target)
