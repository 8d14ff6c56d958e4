"""Entry point of the trainer container in a SageMaker training job (trainer/Dockerfile).

The retrain Lambda (functions/shared/src/retrain.rs) starts the job with two input
channels and its hyperparameters; SageMaker lays them out under ``/opt/ml``:

- ``input/data/snapshot/``: the dataset snapshot (``data.yaml``, ``images/``, ``labels/``;
  the holdout split is there too and is never trained on: data.yaml names train and val);
- ``input/data/weights/``: the parent model's ``.pt`` to fine-tune;
- ``input/config/hyperparameters.json``: ``epochs``, ``imgsz``, ``batch`` (strings),
  ``ultralytics`` (the fine-tune recipe: space-separated ``KEY=VALUE`` Ultralytics arguments,
  values parsed as YAML) and ``snapshot_id`` / ``parent_version`` for the record.

It fine-tunes, exports ONNX, and leaves in ``model/`` (SageMaker tars it to
``training/{job}/output/model.tar.gz``): ``model.onnx``, ``model.pt``, ``result.json``
(metrics on the val split, versions, arguments). On failure it writes the reason to
``output/failure``, which SageMaker reports as the job's ``FailureReason``, and exits 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path

from opti_trainer.progress import emit, quiet_stdout


def _int(hp: dict, key: str, default: int) -> int:
    value = hp.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"hyperparameter {key} must be an integer, got {value!r}") from None


def _recipe(hp: dict) -> dict:
    """The ``ultralytics`` hyperparameter as Ultralytics train arguments."""
    import yaml

    extra = {}
    for item in str(hp.get("ultralytics", "")).split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"hyperparameter ultralytics expects KEY=VALUE items, got {item!r}")
        extra[key] = yaml.safe_load(value)
    return extra


def run(root: Path) -> int:
    """Runs one training job laid out under ``root`` (``/opt/ml`` in SageMaker)."""
    failure = root / "output" / "failure"
    try:
        config = root / "input" / "config" / "hyperparameters.json"
        hp = json.loads(config.read_text()) if config.is_file() else {}
        data = root / "input" / "data" / "snapshot" / "data.yaml"
        weights = sorted((root / "input" / "data" / "weights").glob("*.pt"))
        if not weights:
            raise FileNotFoundError("the weights channel holds no .pt file to fine-tune")
        epochs, imgsz, batch = _int(hp, "epochs", 10), _int(hp, "imgsz", 320), _int(hp, "batch", 16)
        device = hp.get("device")
        if device is None:
            import torch

            device = 0 if torch.cuda.is_available() else "cpu"

        from opti_trainer.export import export_onnx
        from opti_trainer.train import train

        run_dir = Path(os.environ.get("OPTI_RUN_DIR", "/tmp/opti-run"))
        summary = train(
            data=data,
            out=run_dir,
            weights=weights[0],
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            workers=_int(hp, "workers", 2),
            extra={**_recipe(hp), "device": device},
        )
        model_dir = root / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        best = Path(summary["best"])
        shutil.copyfile(best, model_dir / "model.pt")
        export_onnx(best, model_dir / "model.onnx", imgsz)
        result = {
            "snapshot_id": hp.get("snapshot_id"),
            "parent_version": hp.get("parent_version"),
            "metrics": summary["metrics"],
            "versions": summary["versions"],
            "args": summary["args"],
            "train_seconds": summary["train_seconds"],
        }
        (model_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        emit("sagemaker_done", model_dir=str(model_dir))
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to SageMaker and as a non-zero exit
        traceback.print_exc(file=sys.stderr)
        failure.parent.mkdir(parents=True, exist_ok=True)
        # SageMaker keeps the first 1024 characters as the job's FailureReason.
        failure.write_text(f"{type(exc).__name__}: {exc}"[:1024])
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


def main(argv: list[str] | None = None) -> int:
    """SageMaker runs the image as ``<entrypoint> train``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] != "train":
        print(f"usage: python -m opti_trainer.sagemaker train (got {argv!r})", file=sys.stderr)
        return 2
    quiet_stdout()
    return run(Path(os.environ.get("OPTI_SAGEMAKER_ROOT", "/opt/ml")))


if __name__ == "__main__":
    sys.exit(main())
