#!/usr/bin/env bash
# Builds and runs the SIMT emulator's self-tests (test/emu/emu_test.cu) twice: plain -O2, then with
# AddressSanitizer + UndefinedBehaviorSanitizer. Needs g++ and the CUDA headers (CUDA_HOME, default
# /usr/local/cuda), no GPU and no nvcc.   Usage: test/emu/run.sh [plain|asan]   (default: both)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cuda="${CUDA_HOME:-/usr/local/cuda}"
out="${MAMBAKIT_EMU_TEST_OUT:-$root/build-emu/self-test}"  # build-emu/ is git-ignored
mkdir -p "$out"
CXX="${CXX:-g++}"
common=(-std=c++17 -g -Wall -Wno-unknown-pragmas -I"$root/csrc" -I"$cuda/include" -DMAMBAKIT_CUDA_EMU=1)

build_and_run() {
  local name="$1"; shift
  local flags=("$@")
  echo "== emulator self-tests ($name: ${flags[*]})"
  "$CXX" "${common[@]}" "${flags[@]}" -c "$root/csrc/emu/simt.cc" -o "$out/simt-$name.o"
  "$CXX" "${common[@]}" "${flags[@]}" -c "$root/csrc/emu/runtime_emu.cc" -o "$out/runtime_emu-$name.o"
  "$CXX" "${common[@]}" "${flags[@]}" -x c++ -include "$root/csrc/emu/cuda_emu.h" \
    -c "$root/test/emu/emu_test.cu" -o "$out/emu_test-$name.o"
  "$CXX" "${flags[@]}" "$out/emu_test-$name.o" "$out/simt-$name.o" "$out/runtime_emu-$name.o" \
    -o "$out/emu_test-$name" -pthread
  "$out/emu_test-$name"
}

mode="${1:-both}"
if [[ "$mode" == plain || "$mode" == both ]]; then
  build_and_run plain -O2
  echo "== the same, emulating sm_86 (MAMBAKIT_EMU_ARCH=86: 99 KiB shared memory opt-in)"
  MAMBAKIT_EMU_ARCH=86 "$out/emu_test-plain"
fi
if [[ "$mode" == asan || "$mode" == both ]]; then
  # ASan prints one "doesn't fully support makecontext/swapcontext" warning: each fiber's first
  # entry is a swapcontext; the switches after that are annotated (__sanitizer_*_switch_fiber).
  # -fno-sanitize=object-size: GCC 12 miscompiles some kernels with it at -O3 (csrc/emu/README.md).
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    build_and_run asan -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=object-size
fi
