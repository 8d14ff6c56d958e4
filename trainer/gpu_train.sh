#!/usr/bin/env bash
# The recipe of the shipped model's GPU stage, kept so that it can be rerun.
#
# Runs on a machine with a CUDA GPU and PyTorch but no network and no Ultralytics (the
# project's lent GPU machine): installs the carried wheels, generates the synthetic line
# with a carried `opti` binary (deterministic: same seeds, same images as on any machine),
# fine-tunes models/default/model.pt with the project's own trainer, and leaves the run in
# $OUT (weights/best.pt, results.csv, metrics.json, train_summary.json, train.log).
#
# Carried folder (ignored by git), prepared on the CPU machine:
#   .gpu/opti.gz     stripped `opti` binary, gzip'd (any Linux x86_64 with glibc >= 2.36)
#   .gpu/wheels/     ultralytics, ultralytics-thop, ultralytics-platform (pip download --no-deps)
# polars (a 54 MB wheel) is not carried: Ultralytics uses it only to read results.csv into
# checkpoints, which opti_trainer.gpu replaces with the csv module.
#
# Usage: trainer/gpu_train.sh HOURS [EXTRA_IMAGES] [WORKERS]
set -euo pipefail
HOURS=${1:?training hours}
EXTRA=${2:-6000}
WORKERS=${3:-14}
OUT=${OUT:?set OUT to the output folder}
WORK=${WORK:-/tmp/opti-gpu}
PY=${PY:-python3}
DEVICE=${DEVICE:-0}
LINE_COUNT=${LINE_COUNT:-2400}  # lower only to smoke-test this script
mkdir -p "$WORK" "$OUT"
export YOLO_OFFLINE=1 PYTHONPATH="$WORK/py:$PWD/trainer" YOLO_CONFIG_DIR="$WORK/ultra"

"$PY" -m pip install --quiet --no-deps --no-index --target "$WORK/py" .gpu/wheels/*.whl
gunzip -c .gpu/opti.gz >"$WORK/opti" && chmod +x "$WORK/opti"

# The shipped line (seed 1: its val split is the held-out evaluation set) and more parts
# from another stream (seed 3; seed 2 is the drifted evaluation set).
"$WORK/opti" simulate --count "$LINE_COUNT" --seed 1 --out "$WORK/line-v1" --val-fraction 0.15 >/dev/null
"$WORK/opti" simulate --count "$EXTRA" --seed 3 --out "$WORK/line-v1-extra" --val-fraction 0 >/dev/null
cat >"$WORK/data.yaml" <<YAML
path: $WORK
train: [line-v1/images/train, line-v1-extra/images/train]
val: line-v1/images/val
nc: 4
names: {0: defect, 1: fracture, 2: stain, 3: misalignment}
YAML
cp "$WORK/line-v1/manifest.json" "$WORK/manifest.json"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

"$PY" -c "
import sys, csv
sys.modules['polars'] = None  # not installed here; fail loudly if anything else needs it
from ultralytics.engine.trainer import BaseTrainer
def read_results_csv(self):
    try:
        with open(self.csv, newline='') as f:
            rows = list(csv.DictReader(f))
        return {k.strip(): [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}
    except Exception:
        return {}
BaseTrainer.read_results_csv = read_results_csv
from opti_trainer.cli import main
sys.exit(main(sys.argv[1:]))
" train --data "$WORK/data.yaml" --out "$OUT/run" --weights models/default/model.pt \
  --epochs 200 --time "$HOURS" --imgsz 320 --batch 128 --workers "$WORKERS" --cache ram \
  --patience 200 --set device="$DEVICE" 2>"$OUT/train.log"
