#!/usr/bin/env bash
# The one device check: GPU tests and the training benchmark on a lent GPU machine, results in $OUT.
# Installs nothing (torch comes from the image); run from the repository root.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -m pytest -q -p no:cacheprovider tests/worker/test_gpu.py tests/worker/test_devices.py \
  tests/models -m "not slow" 2>&1 | tee "$OUT/gpu_tests.log"
python3 bench/train_throughput.py --threads 8 --epochs 3 2>&1 | tee "$OUT/train_throughput.log"
