"""Detection metrics on a dataset split via Ultralytics' validator."""

from pathlib import Path


def evaluate(weights: Path, data: Path, imgsz: int, batch: int = 16, split: str = "val", workers: int = 2) -> dict:
    """Precision, recall, mAP50 and mAP50-95 of ``weights`` on ``split`` of ``data``
    (overall and per class), at Ultralytics' default conf 0.001 / IoU 0.7 for mAP and its
    F1-optimal operating point for precision and recall."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    seen: list[int] = []
    model.add_callback("on_val_end", lambda validator: seen.append(int(validator.seen or 0)))
    result = model.val(
        data=str(data),
        split=split,
        imgsz=imgsz,
        batch=batch,
        device="cpu",
        workers=workers,
        plots=False,
        save_json=False,
        verbose=False,
        project=str(Path(weights).resolve().parent.parent / "val"),
        exist_ok=True,
    )
    box = result.box
    names = result.names
    per_class = {}
    for i, cls in enumerate(box.ap_class_index):
        cls = int(cls)
        per_class[names[cls]] = {
            "precision": float(box.p[i]),
            "recall": float(box.r[i]),
            "mAP50": float(box.ap50[i]),
            "mAP50-95": float(box.ap[i]),
        }
    return {
        "split": split,
        "data": str(data),
        "imgsz": imgsz,
        "images": seen[-1] if seen else None,
        "precision": float(box.mp),
        "recall": float(box.mr),
        "mAP50": float(box.map50),
        "mAP50-95": float(box.map),
        "per_class": per_class,
    }
