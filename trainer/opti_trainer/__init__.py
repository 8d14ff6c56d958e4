"""Opti-Quality trainer: trains or fine-tunes a YOLO11 detector with Ultralytics and
exports it to ONNX for the Rust service (tract). Offline-safe: never downloads weights.

Run as ``python -m opti_trainer {train,export,val} ...``; progress goes to stdout as
JSON lines so the service can follow a job.
"""

import os

# Must be set before ultralytics is imported anywhere: no hub, no downloads, no telemetry.
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"
