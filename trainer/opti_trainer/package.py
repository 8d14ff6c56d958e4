"""Packaging a trained run as the service's model folder: ``model.onnx`` (for tract),
``model.pt`` (for later fine-tuning) and ``model.json`` (classes, imgsz, lineage,
metrics on the clean held-out split and on a drifted split, how to reproduce)."""

import ast
import hashlib
import json
import shutil
import time
from pathlib import Path

from opti_trainer.dataset import manifest_summary, resolve_data_yaml
from opti_trainer.export import export_onnx
from opti_trainer.metrics import evaluate
from opti_trainer.train import versions

_HEADLINE = ("precision", "recall", "mAP50", "mAP50-95")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dataset_entry(data: Path) -> dict:
    manifest = manifest_summary(data) or {}
    spec = manifest.get("spec", {})
    return {
        "data_yaml": str(data),
        "generator_version": manifest.get("generator_version"),
        "seed": spec.get("seed"),
        "count": spec.get("count"),
        "val_fraction": spec.get("val_fraction"),
        "params": spec.get("params"),
        "train": manifest.get("train"),
        "val": manifest.get("val"),
        "command": manifest.get("command"),
    }


#: The repository root; paths under it are written relative in reproduce commands.
_REPO = Path(__file__).resolve().parents[2]


def _rel(text: str) -> str:
    return text.replace(str(_REPO) + "/", "")


_STANDARD = {"data", "epochs", "imgsz", "batch", "workers", "time", "cache", "seed", "patience"}
_IMPLIED = {"device", "exist_ok", "plots", "amp", "deterministic", "pretrained", "val", "verbose"}


def _train_command(summary: dict, run_name: str) -> str:
    """The ``python -m opti_trainer train`` command that reproduces a run."""
    args = summary.get("args") or {}
    source = summary.get("source", "yolo11n.yaml")
    cmd = ["python -m opti_trainer train", f"--data {args.get('data', 'DATA/data.yaml')}", f"--out runs/{run_name}"]
    cmd.append(f"--weights {source}" if source.endswith(".pt") else f"--model {source}")
    for key in ("epochs", "imgsz", "batch", "time", "workers", "seed", "patience", "cache"):
        if key in args:
            cmd.append(f"--{key} {args[key]}")
    for key, value in args.items():
        if key not in _STANDARD and key not in _IMPLIED:
            cmd.append(f"--set {key}={value}")
    return _rel(" ".join(cmd))


def _lineage(run: Path) -> list[dict]:
    """Training stages that led to ``run``, oldest first (a fine-tune names its parent's
    weights; the parent's run folder holds its own summary)."""
    stages = []
    while run is not None:
        path = run / "train_summary.json"
        if not path.is_file():
            break
        summary = json.loads(path.read_text())
        stages.append({
            "run": run.name,
            "source": summary.get("source"),
            "train_seconds": summary.get("train_seconds"),
            "args": summary.get("args"),
            "clean_val": {k: (summary.get("metrics") or {}).get(k) for k in _HEADLINE},
            "command": _train_command(summary, run.name),
        })
        source = Path(summary.get("source", ""))
        run = source.parent.parent if source.suffix == ".pt" else None
        if source.suffix == ".pt" and (source.parent / "model.json").is_file():
            # Fine-tuned from a packaged model folder: its model.json holds the earlier stages.
            stages.extend(_packaged_stages(source.parent / "model.json")[::-1])
            run = None
    return stages[::-1]


def _packaged_stages(model_json: Path) -> list[dict]:
    """The training stages recorded in a packaged model's ``model.json``, oldest first
    (an early format kept one stage as ``training.from``/``args``; it is read as such)."""
    model = json.loads(model_json.read_text())
    training = model.get("training") or {}
    if training.get("stages"):
        return training["stages"]
    if "from" not in training:
        return []
    clean = (model.get("metrics") or {}).get("clean_val") or {}
    return [{
        "run": f"{model.get('name', 'model')}@{model.get('version', '?')}",
        "source": training.get("from"),
        "train_seconds": training.get("train_seconds"),
        "args": training.get("args"),
        "clean_val": {k: clean.get(k) for k in _HEADLINE},
        "command": _rel(f"python -m opti_trainer train --data {training.get('data', {}).get('data_yaml', 'DATA/data.yaml')} "
                        f"--out runs/train --model {training.get('from')}"),
    }]


def package(run: Path, data: Path, out: Path, imgsz: int, drift_data: Path | None = None,
            version: str | None = None, batch: int = 16) -> dict:
    """Writes ``out/model.onnx``, ``out/model.pt`` and ``out/model.json`` from the run
    folder written by ``train`` and returns the model.json content."""
    run, out = Path(run).resolve(), Path(out).resolve()
    best = run / "weights" / "best.pt"
    if not best.is_file():
        raise FileNotFoundError(f"{best} does not exist: has the training finished?")
    stages = _lineage(run)  # before anything in `out` is replaced: a parent may live there
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out / "model.pt")
    onnx_info = export_onnx(out / "model.pt", out / "model.onnx", imgsz)

    clean = evaluate(out / "model.pt", resolve_data_yaml(data, run), imgsz, batch)
    metrics = {"clean_val": clean}
    if drift_data is not None:
        drifted = evaluate(out / "model.pt", resolve_data_yaml(drift_data, run / "drift"), imgsz, batch)
        drifted["drift"] = (_dataset_entry(drift_data).get("params") or {}).get("drift")
        metrics["drifted_val"] = drifted

    meta = onnx_info["metadata"]
    model = {
        "name": "opti-default",
        "version": version or time.strftime("%Y%m%d") + "-" + _sha256(out / "model.onnx")[:8],
        "task": "detect",
        "architecture": "YOLO11n",
        "classes": [name for _, name in sorted(ast.literal_eval(meta["names"]).items())],
        "imgsz": imgsz,
        "input": {"name": "images", "shape": onnx_info["inputs"].get("images"), "layout": "NCHW RGB 0..1, letterboxed with pad 114"},
        "output": {"name": "output0", "shape": onnx_info["outputs"].get("output0"), "layout": "[1, 4 + nc, N]: cx, cy, w, h (input pixels) + class scores"},
        "files": {
            "onnx": {"path": "model.onnx", "bytes": onnx_info["bytes"], "sha256": _sha256(out / "model.onnx"), "opset": onnx_info["opset"]},
            "pt": {"path": "model.pt", "bytes": (out / "model.pt").stat().st_size, "sha256": _sha256(out / "model.pt")},
        },
        "training": {
            "devices": sorted({str((st.get("args") or {}).get("device", "cpu")) for st in stages}),
            "stages": stages,
            "train_seconds_total": round(sum(st.get("train_seconds") or 0 for st in stages), 1),
            "data": _dataset_entry(data),
        },
        "metrics": {
            "note": "Ultralytics val: mAP at conf 0.001 / IoU 0.7; precision and recall at the F1-optimal confidence.",
            **{k: {m: v[m] for m in _HEADLINE} | {"per_class": v["per_class"], "images": v["images"]} for k, v in metrics.items()},
        },
        "drift_data": _dataset_entry(drift_data) if drift_data is not None else None,
        "versions": versions(),
        "reproduce": [
            "cargo build --release --bin opti && export PATH=$PWD/target/release:$PATH PYTHONPATH=$PWD/trainer YOLO_OFFLINE=1  # then run the commands below from the repository root",
            (_dataset_entry(data).get("command") or "opti simulate ..."),
            *([_dataset_entry(drift_data).get("command")] if drift_data is not None else []),
            *[st["command"] for st in stages],
            _rel(
                f"python -m opti_trainer package --run {run} --data {Path(data).resolve()} "
                + (f"--drift-data {Path(drift_data).resolve()} " if drift_data is not None else "")
                + f"--out models/default --imgsz {imgsz}"
            ),
        ],
    }
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    return model
