"""The trainer container's SageMaker entry point on the layout SageMaker gives it: the
retrain Lambda's two input channels (a dataset snapshot without a `path:` key, and the
parent's weights) and its string hyperparameters, under a temporary /opt/ml."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

TRAINER = Path(__file__).resolve().parent.parent
SHIPPED_PT = TRAINER.parent / "models" / "default" / "model.pt"


def sagemaker_root(tmp_path: Path, tiny_dataset: Path, weights: Path | None) -> Path:
    root = tmp_path / "opt-ml"
    snapshot = root / "input" / "data" / "snapshot"
    shutil.copytree(tiny_dataset.parent, snapshot)
    # The snapshot's data.yaml as the Rust writer makes it: relative paths, no `path:`.
    spec = yaml.safe_load((snapshot / "data.yaml").read_text())
    spec.pop("path", None)
    (snapshot / "data.yaml").write_text(yaml.safe_dump(spec))
    channel = root / "input" / "data" / "weights"
    channel.mkdir(parents=True)
    if weights is not None:
        shutil.copyfile(weights, channel / "model.pt")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    hp = {"epochs": "1", "imgsz": "64", "batch": "4", "workers": "0", "device": "cpu",
          "snapshot_id": "snap-0123456789abcdef", "parent_version": "v-parent",
          "ultralytics": "optimizer=AdamW lr0=0.0003 warmup_epochs=0"}
    (config / "hyperparameters.json").write_text(json.dumps(hp))
    return root


def run_entry(root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1", "OPTI_SAGEMAKER_ROOT": str(root),
           "OPTI_RUN_DIR": str(tmp_path / "run")}
    return subprocess.run([sys.executable, "-m", "opti_trainer.sagemaker", "train"], cwd=TRAINER,
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_training_job_fine_tunes_the_parent_and_leaves_onnx_pt_and_result(tiny_dataset, tmp_path):
    root = sagemaker_root(tmp_path, tiny_dataset, SHIPPED_PT)
    proc = run_entry(root, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    model = root / "model"
    assert (model / "model.onnx").stat().st_size > 1_000_000
    assert (model / "model.pt").stat().st_size > 1_000_000
    result = json.loads((model / "result.json").read_text())
    assert result["snapshot_id"] == "snap-0123456789abcdef"
    assert result["parent_version"] == "v-parent"
    assert 0.0 <= result["metrics"]["mAP50-95"] <= 1.0
    assert result["args"]["epochs"] == 1 and result["args"]["pretrained"] is True
    # The recipe hyperparameter reached Ultralytics, values typed.
    assert result["args"]["optimizer"] == "AdamW" and result["args"]["lr0"] == 0.0003
    assert result["args"]["warmup_epochs"] == 0
    assert not (root / "output" / "failure").exists()
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert events[-1]["event"] == "sagemaker_done", events[-3:]


def test_a_failed_job_tells_sagemaker_why(tiny_dataset, tmp_path):
    root = sagemaker_root(tmp_path, tiny_dataset, None)
    proc = run_entry(root, tmp_path)
    assert proc.returncode == 1
    reason = (root / "output" / "failure").read_text()
    assert "no .pt file" in reason
    assert not (root / "model" / "model.onnx").exists()
