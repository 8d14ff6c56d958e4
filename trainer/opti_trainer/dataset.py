"""Reading the dataset description written by ``opti simulate`` (Ultralytics format)."""

import json
from pathlib import Path

import yaml


def resolve_data_yaml(data: Path, work_dir: Path) -> Path:
    """Returns a data.yaml whose ``path`` exists: the given file if it does, otherwise a
    copy in ``work_dir`` pointing at the folder that holds the original (so a dataset can
    be moved or copied after generation)."""
    data = Path(data).resolve()
    if not data.is_file():
        raise FileNotFoundError(f"dataset file {data} does not exist")
    spec = yaml.safe_load(data.read_text()) or {}
    for key in ("train", "val", "names"):
        if key not in spec:
            raise ValueError(f"{data}: missing `{key}`")
    root = Path(spec.get("path") or data.parent)
    if root.is_dir():
        return data
    spec["path"] = str(data.parent)
    work_dir.mkdir(parents=True, exist_ok=True)
    fixed = work_dir / "data.yaml"
    fixed.write_text(yaml.safe_dump(spec, sort_keys=False))
    return fixed


def manifest_summary(data: Path) -> dict | None:
    """The generator manifest beside data.yaml, if any (``manifest.json``)."""
    path = Path(data).resolve().parent / "manifest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())
