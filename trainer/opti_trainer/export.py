"""ONNX export for the Rust service: static input shape, pinned opset, simplified graph,
class names and imgsz in the ONNX metadata (written by Ultralytics)."""

import shutil
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
    model = YOLO(str(weights))
    produced = model.export(
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if Path(produced).resolve() != out.resolve():
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
