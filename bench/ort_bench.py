"""onnxruntime side of `opti bench --compare-ort`: the same model, images and thread counts.

Measures, per image, the same four stages as the Rust benchmark:
decode (cv2.imdecode of the bytes already in memory), preprocess (the Ultralytics
letterbox — cv2.resize INTER_LINEAR + pad 114 — then RGB, NCHW, /255), inference
(InferenceSession.run) and postprocess (best class per anchor, floor, class-aware NMS
in numpy, boxes back to the original image). Only numpy, OpenCV and onnxruntime are
imported (no torch), so the peak RSS is that of an onnxruntime pipeline.

Threads: for each count t, "intra" runs one session with intra_op_num_threads=t over
the images one by one; "workers" runs t sessions (intra_op_num_threads=1) in t Python
threads over the images, like the Rust benchmark's t workers.

    python bench/ort_bench.py --model models/default/model.onnx --images DIR --threads 1,2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

cv2.setNumThreads(1)  # the Rust side decodes and resizes on one thread per worker


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def letterbox(bgr: np.ndarray, h: int, w: int):
    """Ultralytics LetterBox(auto=False, center=True) with cv2.INTER_LINEAR, pad 114."""
    sh, sw = bgr.shape[:2]
    r = min(h / sh, w / sw)
    nw, nh = max(round(sw * r), 1), max(round(sh * r), 1)
    dw, dh = (w - nw) / 2, (h - nh) / 2
    if (sw, sh) != (nw, nh):
        bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    out = cv2.copyMakeBorder(bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return out, (nw / sw, nh / sh, left, top)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = scores.argsort()[::-1]
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ious = inter / (areas[i] + areas[rest] - inter + 1e-12)
        order = rest[ious <= iou]
    return keep


def postprocess(raw: np.ndarray, geo, orig_hw, conf=0.25, iou=0.7, max_det=300):
    gx, gy, left, top = geo
    oh, ow = orig_hw
    if raw.shape[2] == 6 and raw.shape[1] != 6:  # end-to-end [1, K, 6]
        det = raw[0][raw[0, :, 4] > conf][:max_det]
        boxes, scores, cls = det[:, :4].copy(), det[:, 4], det[:, 5]
    else:  # [1, 4 + nc, N]
        p = raw[0]
        cls_scores = p[4:]
        best = cls_scores.max(0)
        m = best > conf
        cls = cls_scores[:, m].argmax(0)
        scores = best[m]
        cx, cy, w, h = p[0, m], p[1, m], p[2, m], p[3, m]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        offset = boxes + (cls * 7680.0)[:, None]
        keep = nms_numpy(offset, scores, iou)[:max_det]
        boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / gx).clip(0, ow) / ow
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / gy).clip(0, oh) / oh
    return boxes, scores, cls


def pipeline(session, name, h, w, data: bytes, conf: float, iou: float):
    t0 = time.perf_counter()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    t1 = time.perf_counter()
    lb, geo = letterbox(bgr, h, w)
    x = np.ascontiguousarray(lb[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
    t2 = time.perf_counter()
    c2 = time.thread_time()
    raw = session.run(None, {name: x})[0]
    c3 = time.thread_time()
    t3 = time.perf_counter()
    postprocess(raw, geo, bgr.shape[:2], conf, iou)
    t4 = time.perf_counter()
    # The last value: CPU time of this thread in inference (with intra_op_num_threads=1
    # onnxruntime computes on the calling thread), which other jobs on a shared machine
    # disturb far less than wall time.
    return (t1 - t0, t2 - t1, t3 - t2, t4 - t3, c3 - c2)


def make_session(model: str, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def stats_ms(values):
    a = np.asarray(values) * 1000.0
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, type=Path)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--count", type=int, default=0, help="use at most this many images (0: all)")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()

    files = sorted(p for p in args.images.rglob("*") if p.is_file())
    blobs = []
    for p in files:
        b = p.read_bytes()
        if b.startswith(b"\x89PNG\r\n\x1a\n") or b.startswith(b"\xff\xd8\xff"):
            blobs.append(b)
    if args.count:
        blobs = blobs[: args.count]
    if not blobs:
        print(f"no PNG/JPEG images in {args.images}", file=sys.stderr)
        return 2
    meta = {p.key: p.value for p in onnx.load(args.model, load_external_data=False).metadata_props}
    imgsz = json.loads(meta.get("imgsz", "[640, 640]"))
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    threads = [int(t) for t in args.threads.split(",") if t.strip()]

    t0 = time.perf_counter()
    session = make_session(args.model, 1)
    load_ms = (time.perf_counter() - t0) * 1000.0
    name = session.get_inputs()[0].name
    t0 = time.perf_counter()
    pipeline(session, name, h, w, blobs[0], args.conf, args.iou)
    first_ms = (time.perf_counter() - t0) * 1000.0
    for i in range(args.warmup):
        pipeline(session, name, h, w, blobs[i % len(blobs)], args.conf, args.iou)
    stages = [[], [], [], [], []]
    for _ in range(args.rounds):
        for b in blobs:
            for k, v in enumerate(pipeline(session, name, h, w, b, args.conf, args.iou)):
                stages[k].append(v)
    totals = [sum(s[:4]) for s in zip(*stages)]
    rss_single = peak_rss_mb()  # one session, before the multi-session runs
    result = {
        "runtime": f"onnxruntime {ort.__version__}",
        "images": len(blobs),
        "rounds": args.rounds,
        "load_ms": load_ms,
        "first_ms": first_ms,
        "latency_ms": {
            "decode": stats_ms(stages[0]),
            "preprocess": stats_ms(stages[1]),
            "inference": stats_ms(stages[2]),
            "postprocess": stats_ms(stages[3]),
            "inference_cpu": stats_ms(stages[4]),
            "total": stats_ms(totals),
        },
        "intra": {},
        "workers": {},
    }
    jobs = [b for _ in range(args.rounds) for b in blobs]
    for t in threads:
        s = make_session(args.model, t)
        for i in range(args.warmup):
            pipeline(s, name, h, w, blobs[i % len(blobs)], args.conf, args.iou)
        start = time.perf_counter()
        for b in jobs:
            pipeline(s, name, h, w, b, args.conf, args.iou)
        result["intra"][str(t)] = len(jobs) / (time.perf_counter() - start)

        sessions = [make_session(args.model, 1) for _ in range(t)]
        for s in sessions:
            pipeline(s, name, h, w, blobs[0], args.conf, args.iou)
        lock = threading.Lock()
        nxt = [0]

        def worker(sess):
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(jobs):
                    return
                pipeline(sess, name, h, w, jobs[i], args.conf, args.iou)

        start = time.perf_counter()
        ths = [threading.Thread(target=worker, args=(s,)) for s in sessions]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        result["workers"][str(t)] = len(jobs) / (time.perf_counter() - start)
        del sessions
    result["peak_rss_mb"] = rss_single
    result["peak_rss_mb_all_runs"] = peak_rss_mb()

    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
