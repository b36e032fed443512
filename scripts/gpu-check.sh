#!/usr/bin/env bash
# The one prepared command for a GPU machine (npm run gpu:check; there, with no Node.js installed:
# bash .device/run.sh 'bash scripts/gpu-check.sh' after ../shared/device/stage.sh, carrying .device and
# build). About 8 minutes: the CUDA suite (the files test:gpu runs, a missing GPU fails), the GPU
# benchmarks into $OUT/*-gpu.json, then compute-sanitizer memcheck / racecheck / synccheck on the kernel
# tests where it is installed. Each step has its own time limit and the next one runs anyway; the exit
# status is the CUDA suite's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
jest_bin=node_modules/.bin/jest
# the addon built elsewhere may not load here: rebuild for this machine's GPU then
node -e "require('./dist/lib').cudaAvailable() || process.exit(3)" 2>/dev/null || {
  echo "== rebuilding the addon here (sm_90)"
  MAMBAKIT_CUDA_ARCHS=90-real node scripts/build-native.js > "$OUT/build.txt" 2>&1 || tail -20 "$OUT/build.txt"
}
node -e "const m=require('./dist/lib'); console.log(JSON.stringify(m.info().gpus))"
echo "== CUDA suite"
MAMBAKIT_REQUIRE_GPU=1 timeout 240 "$jest_bin" test/ops test/cuda test/io test/tensor.test.ts test/errors.test.ts test/models \
  test/generate test/vision --testPathIgnorePatterns llama-cpp pack 2>&1 | tee "$OUT/test-gpu.txt" | tail -40
suite=${PIPESTATUS[0]}
echo "== GPU benchmarks"
timeout 60 node dist/scripts/bench-gemm.js --device cuda --out "$OUT/gemm-gpu.json" | tail -15
timeout 90 node --max-old-space-size=16384 dist/scripts/bench-mamba-gpu.js --out "$OUT/mamba-gpu.json" | tail -15
timeout 90 node dist/lib/cli/main.js bench --device cuda --size small --rounds 3 --out "$OUT/sparse-gpu.json" --chart "$OUT/sparse-gpu.svg" | tail -15
# LLaDA-8B's width (d_model 4096, 32 heads, mlp 12288, vocab 126464) with 2 of its 32 layers: writing 8B
# random weights would not fit the device window; per-layer times scale
timeout 150 node --max-old-space-size=32768 dist/scripts/bench-diffusion.js --device cuda --d 4096 --layers 2 --heads 32 \
  --vocab 126464 --modes exact,dual,dual+threshold --out "$OUT/diffusion-gpu.json" | tail -10
if command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer --tool $tool (the kernel tests)"
    MAMBAKIT_REQUIRE_GPU=1 MAMBAKIT_CUDA_GRAPHS=0 timeout 60 compute-sanitizer --tool "$tool" --error-exitcode 9 \
      node "$jest_bin" --runInBand test/ops/gemm.test.ts test/ops/ssm.test.ts test/ops/sparse.test.ts test/ops/attention.test.ts 2>&1 | tail -25 | tee "$OUT/sanitizer-$tool.txt"
  done
else
  echo "== compute-sanitizer is not installed here"
fi
exit "$suite"
