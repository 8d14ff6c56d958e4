"""Train for one epoch on a tiny dataset, export to ONNX, and run the ONNX file with
onnxruntime: the path every retraining job takes, end to end, in well under 2 minutes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import yaml

from conftest import NAMES, TRAINER

PYTHON = sys.executable


def run_trainer(*args: str) -> list[dict]:
    """Runs ``python -m opti_trainer`` and returns its JSON-line events."""
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.run(
        [PYTHON, "-m", "opti_trainer", *args],
        cwd=TRAINER,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Every stdout line is a JSON event; human logs went to stderr.
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_one_epoch_train_exports_an_onnx_that_onnxruntime_runs(tiny_dataset: Path, tmp_path: Path):
    run = tmp_path / "run"
    events = run_trainer(
        "train", "--data", str(tiny_dataset), "--out", str(run), "--model", "yolo11n.yaml",
        "--epochs", "1", "--imgsz", "64", "--batch", "4", "--workers", "0",
    )
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done", kinds
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["epoch"] == 1 and set(epoch["losses"]) == {"box_loss", "cls_loss", "dfl_loss"}
    assert kinds.count("epoch") == 1, "the final validation must not repeat the epoch event"

    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("precision", "recall", "mAP50", "mAP50-95"):
        assert 0.0 <= metrics[key] <= 1.0
    best = run / "weights" / "best.pt"
    assert best.is_file()

    onnx_path = tmp_path / "model.onnx"
    exported = run_trainer("export", "--weights", str(best), "--out", str(onnx_path), "--imgsz", "64")
    info = exported[-1]
    assert info["event"] == "exported" and onnx_path.is_file()
    assert info["inputs"] == {"images": [1, 3, 64, 64]}
    meta = info["metadata"]
    assert yaml.safe_load(meta["names"]) == dict(enumerate(NAMES))
    assert yaml.safe_load(meta["imgsz"]) == [64, 64]

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"images": np.zeros((1, 3, 64, 64), np.float32)})
    assert out.shape[:2] == (1, 4 + len(NAMES))  # cx, cy, w, h + one score per class

    # Packaging writes the service's model folder with lineage and both metric sets.
    model_dir = tmp_path / "models" / "default"
    packaged = run_trainer(
        "package", "--run", str(run), "--data", str(tiny_dataset), "--drift-data", str(tiny_dataset),
        "--out", str(model_dir), "--imgsz", "64",
    )
    assert packaged[-1]["event"] == "packaged"
    model = json.loads((model_dir / "model.json").read_text())
    assert model["classes"] == NAMES and model["imgsz"] == 64
    assert {"clean_val", "drifted_val"} <= set(model["metrics"])
    assert model["metrics"]["clean_val"]["images"] == 4
    assert model["training"]["stages"][0]["command"].startswith("python -m opti_trainer train")
    assert (model_dir / "model.onnx").stat().st_size == model["files"]["onnx"]["bytes"]
    assert (model_dir / "model.pt").is_file()


def test_missing_weights_fail_with_an_error_event(tmp_path: Path):
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.run(
        [PYTHON, "-m", "opti_trainer", "export", "--weights", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")],
        cwd=TRAINER, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    event = json.loads(proc.stdout.splitlines()[-1])
    assert event["event"] == "error" and "nope.pt" in event["message"]


def test_moved_dataset_is_found_beside_its_yaml(tiny_dataset: Path, tmp_path: Path):
    from opti_trainer.dataset import resolve_data_yaml

    spec = yaml.safe_load(tiny_dataset.read_text())
    spec["path"] = "/nonexistent/place/it/was/generated"
    moved = tiny_dataset.parent / "moved.yaml"
    moved.write_text(yaml.safe_dump(spec))
    fixed = resolve_data_yaml(moved, tmp_path)
    assert fixed != moved
    assert Path(yaml.safe_load(fixed.read_text())["path"]) == tiny_dataset.parent
    assert resolve_data_yaml(tiny_dataset, tmp_path) == tiny_dataset.resolve()


def test_fine_tune_of_a_packaged_model_keeps_its_lineage(tmp_path: Path):
    """A run fine-tuned from models/<name>/model.pt lists the packaged model's own stages
    first, so model.json tells the whole story of the weights."""
    from opti_trainer.package import _lineage

    parent = tmp_path / "models" / "default"
    parent.mkdir(parents=True)
    (parent / "model.json").write_text(json.dumps({"training": {"stages": [
        {"run": "stage-1", "source": "yolo11n.yaml", "command": "python -m opti_trainer train ..."},
    ]}}))
    run = tmp_path / "runs" / "stage-2"
    run.mkdir(parents=True)
    (run / "train_summary.json").write_text(json.dumps({
        "source": str(parent / "model.pt"), "train_seconds": 1.0,
        "args": {"data": "d.yaml", "epochs": 1}, "metrics": {"recall": 0.9},
    }))
    stages = _lineage(run)
    assert [s["run"] for s in stages] == ["stage-1", "stage-2"]
    assert stages[1]["clean_val"]["recall"] == 0.9


def test_export_leaves_files_beside_the_weights_alone(tmp_path: Path):
    """Exporting models/<name>/model.pt elsewhere must not replace or move the folder's
    own model.onnx (it is what the service runs)."""
    folder = tmp_path / "models" / "default"
    folder.mkdir(parents=True)
    shutil.copyfile(TRAINER.parent / "models" / "default" / "model.pt", folder / "model.pt")
    (folder / "model.onnx").write_bytes(b"the shipped model")
    out = tmp_path / "elsewhere" / "candidate.onnx"
    events = run_trainer("export", "--weights", str(folder / "model.pt"), "--out", str(out), "--imgsz", "64")
    assert events[-1]["event"] == "exported" and out.is_file()
    assert (folder / "model.onnx").read_bytes() == b"the shipped model"
