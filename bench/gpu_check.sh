#!/usr/bin/env bash
# Every GPU check of logg in one device call (`device` tool; ≤ ~9 min on an H100):
#   run(command="bash bench/gpu_check.sh", timeout_s=600)
# 1. the generator's device tests (the CUDA ones run there; on CPU-only machines they skip);
# 2. bench/gen_device.py: generator v1/v2 spectra/s and v2's exact CRLB/s, CPU beside the
#    GPU, with the GPU's spectra and σ_CRLB against the CPU's;
# 3. bench/vit_throughput.py --device cuda: the ViT's training throughput and R² within a
#    time budget against a research-style fp32 baseline (toy spectra, no dataset needed).
# The device image's python3 holds torch (CUDA), numpy, h5py, scipy, pandas, pytest, typer
# and rich; the engine is imported from the working tree. Writes gen_device.json,
# vit_throughput.json/.md and gpu_check.log under $OUT (default bench/results); copy them to
# bench/results/ here afterwards. Each part has its own time limit, so one slow part cannot
# take the others' results with it.
set -o pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_generator_device.py
  timeout 240 python3 bench/gen_device.py --compile --n-me 1024 --n-lte 128 --n-crlb 32 \
      --batch 64 --repeats 2 --out "$OUT/gen_device.json"
  timeout 180 python3 bench/vit_throughput.py --device cuda --budget-s 45
  if [ "$OUT" != bench/results ]; then
    cp bench/results/vit_throughput.json bench/results/vit_throughput.md "$OUT/" 2>/dev/null
  fi
} 2>&1 | tee "$OUT/gpu_check.log"
