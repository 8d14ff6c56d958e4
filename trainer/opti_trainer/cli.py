"""Argument parsing for ``python -m opti_trainer``."""

import argparse
import json
import sys
import traceback
from pathlib import Path

from opti_trainer.progress import emit, quiet_stdout


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opti_trainer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train from scratch or fine-tune, then validate")
    t.add_argument("--data", type=Path, required=True, help="dataset data.yaml (opti simulate output)")
    t.add_argument("--out", type=Path, required=True, help="run folder (weights/, metrics.json)")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--weights", type=Path, help="local .pt to fine-tune (never downloaded)")
    src.add_argument("--model", default="yolo11n.yaml", help="model YAML to train from scratch")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--imgsz", type=int, default=320)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--time", type=float, default=None, help="wall-clock cap in hours")
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=100)
    t.add_argument("--cache", choices=["ram", "disk", "none"], default="none", help="cache decoded images")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Ultralytics train argument, e.g. --set warmup_epochs=0 (repeatable)")

    e = sub.add_parser("export", help="export weights to ONNX for the service")
    e.add_argument("--weights", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True, help="model.onnx path")
    e.add_argument("--imgsz", type=int, default=320)

    k = sub.add_parser("package", help="export a finished run as models/<name>/ (onnx, pt, model.json)")
    k.add_argument("--run", type=Path, required=True, help="run folder written by train")
    k.add_argument("--data", type=Path, required=True, help="the training dataset's data.yaml (val = clean held-out split)")
    k.add_argument("--drift-data", type=Path, help="data.yaml of a drifted evaluation set")
    k.add_argument("--out", type=Path, required=True, help="model folder, e.g. models/default")
    k.add_argument("--imgsz", type=int, default=320)
    k.add_argument("--version", help="model version [default: date + ONNX hash]")

    v = sub.add_parser("val", help="metrics of weights on a dataset split")
    v.add_argument("--weights", type=Path, required=True)
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--imgsz", type=int, default=320)
    v.add_argument("--batch", type=int, default=16)
    v.add_argument("--split", default="val")
    v.add_argument("--workers", type=int, default=2)
    v.add_argument("--out", type=Path, help="metrics JSON path [default: beside the weights]")
    return p


def _extra_args(args) -> dict:
    """Ultralytics arguments from --cache and --set KEY=VALUE (values parsed as YAML)."""
    import yaml

    extra = {"cache": args.cache} if args.cache != "none" else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        extra[key.strip()] = yaml.safe_load(value)
    return extra


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_stdout()
    try:
        if args.command == "train":
            from opti_trainer.train import train

            train(
                data=args.data,
                out=args.out,
                model=args.model,
                weights=args.weights,
                epochs=args.epochs,
                imgsz=args.imgsz,
                batch=args.batch,
                hours=args.time,
                workers=args.workers,
                seed=args.seed,
                patience=args.patience,
                extra=_extra_args(args),
            )
        elif args.command == "export":
            from opti_trainer.export import export_onnx

            info = export_onnx(args.weights, args.out, args.imgsz)
            emit("exported", **info)
        elif args.command == "package":
            from opti_trainer.package import package

            model = package(args.run, args.data, args.out, args.imgsz, args.drift_data, args.version)
            emit("packaged", path=str(args.out), version=model["version"], metrics=model["metrics"])
        elif args.command == "val":
            from opti_trainer.dataset import resolve_data_yaml
            from opti_trainer.metrics import evaluate

            out = args.out or args.weights.resolve().parent / f"metrics_{args.split}.json"
            data = resolve_data_yaml(args.data, out.parent)
            metrics = evaluate(args.weights, data, args.imgsz, args.batch, args.split, args.workers)
            out.write_text(json.dumps(metrics, indent=2) + "\n")
            emit("metrics", path=str(out), **metrics)
    except Exception as exc:  # noqa: BLE001 - reported as a JSON event and a non-zero exit
        traceback.print_exc(file=sys.stderr)
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0
