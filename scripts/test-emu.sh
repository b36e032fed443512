#!/usr/bin/env bash
# npm run test:emu: every CUDA kernel executed on the CPU. Builds the addon with its CUDA backend on the
# SIMT emulator (csrc/emu/, no nvcc, no GPU) into build-emu/, under AddressSanitizer + UBSan unless
# MAMBAKIT_SANITIZE=0, runs the emulator's own planted-bug tests, then the CUDA test suite (the files
# test:gpu runs) against the CPU oracle in the forward lane schedule and the kernel tests again in
# the schedules of MAMBAKIT_EMU_SCHEDULES (default "reverse random:7": a missing barrier shows under
# some orders only). About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize="${MAMBAKIT_SANITIZE:-1}"
MAMBAKIT_CUDA_EMU=1 MAMBAKIT_SANITIZE="$sanitize" node scripts/build-native.js --out build-emu
if [[ "$sanitize" == 1 ]]; then bash test/emu/run.sh asan; else bash test/emu/run.sh plain; fi

export MAMBAKIT_ADDON=build-emu/Release/mambakit.node MAMBAKIT_REQUIRE_GPU=1
if [[ "$sanitize" == 1 ]]; then
  # the sanitizer runtimes must come first in the process (node itself is not instrumented)
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  # allocator_may_return_null: the E_OOM test asks for a huge block and expects a coded error, not an abort
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
fi
files=(test/ops test/cuda test/io test/tensor.test.ts test/errors.test.ts test/models test/generate test/vision test/editors)
# the whole suite in the forward schedule, then the kernels alone (test/ops, test/cuda; sampling's
# statistics excepted for time) in the reverse and a seeded random order
echo "== CUDA suite under the emulator, schedule forward"
MAMBAKIT_EMU_SCHEDULE=forward npx jest "${files[@]}" --testPathIgnorePatterns llama-cpp pack convert-editors
for sched in ${MAMBAKIT_EMU_SCHEDULES:-reverse random:7}; do
  echo "== CUDA kernels under the emulator, schedule $sched"
  MAMBAKIT_EMU_SCHEDULE="$sched" npx jest test/ops test/cuda --testPathIgnorePatterns sample
done
