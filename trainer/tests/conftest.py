"""Test setup: import the trainer from this checkout, and a tiny generated dataset."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TRAINER = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TRAINER))

NAMES = ["defect", "fracture", "stain", "misalignment"]


def _write_split(root: Path, split: str, n: int, rng: np.random.Generator) -> None:
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    for i in range(n):
        img = np.full((96, 96, 3), 150, np.uint8)
        img += rng.integers(0, 12, img.shape, dtype=np.uint8)
        lines = []
        if i % 3:  # every third image is a clean part
            cls = i % 4
            x0, y0 = rng.integers(5, 50, 2)
            w, h = rng.integers(15, 40, 2)
            img[y0 : y0 + h, x0 : x0 + w] = (30 + 50 * cls, 20, 200 - 40 * cls)
            lines.append(f"{cls} {(x0 + w / 2) / 96:.6f} {(y0 + h / 2) / 96:.6f} {w / 96:.6f} {h / 96:.6f}")
        Image.fromarray(img).save(root / "images" / split / f"img_{i:03}.jpg", quality=92)
        (root / "labels" / split / f"img_{i:03}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A dataset in the layout ``opti simulate`` writes: 8 train and 4 val images of
    coloured rectangles on a noisy grey ground, four classes, some clean."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    _write_split(root, "train", 8, rng)
    _write_split(root, "val", 4, rng)
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(NAMES))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return root / "data.yaml"
