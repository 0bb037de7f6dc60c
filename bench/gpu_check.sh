#!/usr/bin/env bash
# The generator's GPU checks in one device call (`device` tool, ~5–8 min on an H100):
#   run(command="bash bench/gpu_check.sh", timeout_s=600)
# The device image's python3 holds torch (CUDA), numpy, h5py, scipy, pandas, pytest, typer
# and rich; the engine is imported from the working tree. Writes $OUT/gen_device.json (the
# CPU/GPU side-by-side figures of bench/gen_device.py) and $OUT/gpu_check.log; copy the JSON
# to bench/results/ here afterwards.
set -o pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  # the device tests (the CUDA ones run here; on CPU-only machines they skip)
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_generator_device.py
  # throughput and accuracy, CPU (16 threads) beside the GPU; v2 compiled as the lattice uses it
  timeout 420 python3 bench/gen_device.py --compile --n-me 1024 --n-lte 256 --n-crlb 64 \
      --batch 64 --repeats 2 --out "$OUT/gen_device.json"
} 2>&1 | tee "$OUT/gpu_check.log"
