"""ONNX export for the Rust service: static input shape, pinned opset, simplified graph,
class names and imgsz in the ONNX metadata (written by Ultralytics)."""

import shutil
import tempfile
from pathlib import Path

#: ONNX opset of exported models; tract and onnxruntime both run it.
OPSET = 17


def export_onnx(weights: Path, out: Path, imgsz: int) -> dict:
    """Exports ``weights`` to ``out`` (an .onnx path) and returns what the file holds."""
    import onnx
    from ultralytics import YOLO

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"weights {weights} do not exist")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Ultralytics writes `<weights>.onnx` beside the weights: export from a private copy so
    # that a model folder's own model.onnx (e.g. models/default) is never overwritten or
    # moved away when only `out` was asked for.
    with tempfile.TemporaryDirectory(prefix="opti-export-") as tmp:
        private = Path(tmp) / weights.name
        shutil.copyfile(weights, private)
        produced = YOLO(str(private)).export(
            format="onnx",
            imgsz=imgsz,
            opset=OPSET,
            simplify=True,
            dynamic=False,
            nms=False,
            half=False,
            batch=1,
            device="cpu",
        )
        shutil.move(str(produced), out)
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return {
        "onnx": str(out),
        "bytes": out.stat().st_size,
        "opset": OPSET,
        "inputs": {i.name: dims(i) for i in proto.graph.input},
        "outputs": {o.name: dims(o) for o in proto.graph.output},
        "metadata": meta,
    }
