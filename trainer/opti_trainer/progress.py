"""Progress reporting as JSON lines on the real stdout, one object per event, so that a
supervising process can follow a job line by line. Everything else (Ultralytics' own
logging, tqdm bars) is sent to stderr."""

import json
import logging
import math
import os
import sys
import time

_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
_START = time.time()


def _clean(value):
    """Makes numbers JSON-safe (NaN/inf become null) and numpy/torch scalars plain."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(event: str, **fields) -> None:
    """Writes one JSON line ``{"event": ..., "elapsed_s": ..., **fields}`` to stdout."""
    record = {"event": event, "elapsed_s": round(time.time() - _START, 1), **_clean(fields)}
    _OUT.write(json.dumps(record) + "\n")
    _OUT.flush()


def quiet_stdout() -> None:
    """Sends Python's stdout and Ultralytics' log handlers to stderr, leaving the real
    stdout to :func:`emit`."""
    sys.stdout = sys.stderr
    from ultralytics.utils import LOGGER

    for handler in LOGGER.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
