#!/usr/bin/env bash
# The one device check, results in $OUT: the GPU tests, the training benchmark on the GPU, and the
# CPU benchmarks (serving, then training) on that quiet machine, where other work does not blur
# their ratios. The most wanted numbers come first, so a run cut short still returns them.
# Installs nothing: torch comes from the image, the service's other dependencies from .gpu_site
# (made here by bench/gpu_deps.sh, carried by the call). Run from the repository root:
#   run(command="bash bench/gpu_check.sh", carry=[".gpu_site"])
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD:$PWD/.gpu_site PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -m pytest -q -p no:cacheprovider tests/worker/test_gpu.py tests/worker/test_devices.py \
  2>&1 | tee "$OUT/gpu_tests.log"
python3 bench/train_throughput.py --device cuda --threads 8 --epochs 3 --write 2>&1 \
  | tee "$OUT/train_throughput_cuda.log"
# The book's AlexNet (224x224) and ResNet-18 (96x96) on 60,000 Fashion-MNIST-format images:
# the engine in bf16 with channels_last against the course's DataLoader (goal: >= 5x the
# book's V100, 3.9-4.2k and 4.7-5.0k examples/s).
python3 bench/book_sizes.py --device cuda --threads 8 --steps 50 --precision bf16 \
  --channels-last --write 2>&1 | tee "$OUT/book_sizes_cuda.log"
cp bench/RESULTS.md "$OUT/RESULTS.md"
python3 bench/inference.py --pin --seconds 2 --rounds 3 --write 2>&1 | tee "$OUT/inference.log"
cp bench/RESULTS.md "$OUT/RESULTS.md"
python3 bench/train_throughput.py --device cpu --threads 1 --epochs 3 --write 2>&1 \
  | tee "$OUT/train_throughput_cpu.log"
cp bench/RESULTS.md "$OUT/RESULTS.md"
