"""Training a YOLO detector from scratch (a model YAML) or fine-tuning a local .pt,
with JSON-line progress and metrics written next to the weights."""

import json
import platform
import shutil
import time
from pathlib import Path

from opti_trainer.dataset import manifest_summary, resolve_data_yaml
from opti_trainer.metrics import evaluate
from opti_trainer.progress import emit

_LOSS_KEYS = ("box_loss", "cls_loss", "dfl_loss")


def _epoch_start_callback(trainer) -> None:
    trainer._opti_in_epoch = True


def _epoch_callback(trainer) -> None:
    metrics = trainer.metrics or {}
    if not getattr(trainer, "_opti_in_epoch", False):
        # Ultralytics calls this hook once more, outside any epoch, for its final
        # validation of best.pt.
        emit(
            "final_val",
            precision=metrics.get("metrics/precision(B)"),
            recall=metrics.get("metrics/recall(B)"),
            mAP50=metrics.get("metrics/mAP50(B)"),
            **{"mAP50-95": metrics.get("metrics/mAP50-95(B)")},
        )
        return
    trainer._opti_in_epoch = False
    losses = trainer.label_loss_items(trainer.tloss, prefix="train")
    emit(
        "epoch",
        epoch=trainer.epoch + 1,
        epochs=trainer.epochs,
        epoch_time_s=round(getattr(trainer, "epoch_time", 0.0) or 0.0, 1),
        losses={k.split("/")[-1]: v for k, v in losses.items()},
        precision=metrics.get("metrics/precision(B)"),
        recall=metrics.get("metrics/recall(B)"),
        mAP50=metrics.get("metrics/mAP50(B)"),
        **{"mAP50-95": metrics.get("metrics/mAP50-95(B)")},
        val_losses={k.split("/")[-1]: v for k, v in metrics.items() if k.startswith("val/")},
        lr=(trainer.lr or {}).get("lr/pg0"),
    )


def versions() -> dict:
    """Versions of the libraries that shape the trained weights."""
    import torch
    import ultralytics

    return {
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def train(
    data: Path,
    out: Path,
    model: str = "yolo11n.yaml",
    weights: Path | None = None,
    epochs: int = 100,
    imgsz: int = 320,
    batch: int = 16,
    hours: float | None = None,
    workers: int = 2,
    seed: int = 0,
    patience: int = 100,
    extra: dict | None = None,
) -> dict:
    """Trains and returns the summary written to ``out/train_summary.json``.

    From scratch with ``model`` (a YAML name such as ``yolo11n.yaml``), or from
    ``weights`` (a local ``.pt``) when given. ``hours`` caps wall-clock time (Ultralytics
    ``time=``, which also fits the learning-rate schedule to the budget). Never downloads.
    """
    from ultralytics import YOLO

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_yaml = resolve_data_yaml(Path(data), out)
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"weights {weights} do not exist (nothing is downloaded)")
        source = str(weights)
    else:
        if not model.endswith((".yaml", ".yml")):
            raise ValueError(f"--model must be a model YAML such as yolo11n.yaml, got {model}")
        source = model
    yolo = YOLO(source)
    yolo.add_callback("on_train_epoch_start", _epoch_start_callback)
    yolo.add_callback("on_fit_epoch_end", _epoch_callback)
    emit("start", data=str(data_yaml), model=source, epochs=epochs, imgsz=imgsz, batch=batch, hours=hours)

    args = dict(
        data=str(data_yaml),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        workers=workers,
        device="cpu",
        project=str(out.parent),
        name=out.name,
        exist_ok=True,
        plots=False,
        amp=False,
        seed=seed,
        deterministic=False,
        patience=patience,
        pretrained=weights is not None,
        val=True,
        verbose=True,
    )
    if hours:
        args["time"] = hours
    args.update(extra or {})
    started = time.time()
    yolo.train(**args)
    train_seconds = time.time() - started

    weights_dir = out / "weights"
    best = weights_dir / "best.pt"
    if not best.is_file():
        best = weights_dir / "last.pt"
    metrics = evaluate(best, data_yaml, imgsz=imgsz, batch=batch, workers=workers)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    summary = {
        "best": str(best),
        "train_seconds": round(train_seconds, 1),
        "source": source,
        "args": {k: v for k, v in args.items() if k not in ("project", "name")},
        "versions": versions(),
        "metrics": metrics,
        "dataset_manifest": manifest_summary(Path(data)),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    emit("done", best=str(best), metrics={k: metrics[k] for k in ("precision", "recall", "mAP50", "mAP50-95")})
    return summary


def copy_weights(best: Path, dest: Path) -> None:
    """Copies trained weights to ``dest`` (creating folders)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, dest)
