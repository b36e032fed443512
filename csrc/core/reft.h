// Representation editors (ReFT / LoReFT, MRT): low-rank edits of hidden states, shared by the CPU and
// CUDA kernels, the op table (`reft`) and the plans' edit points (plan/edit.h). For each of n rows i,
// with e = editor[i] and h = x[rows[i]] + pending[rows[i]] (pending may be null):
//   u = W_e h + b_e,  v = R_e h                                   (r values each, f32 dots over C)
//   PYREFT: d = act(u) − v        MRT: d = act(u − v)             (equal for the identity)
//   (pending ? pending : x)[rows[i]] += R_eᵀ d                     (the stream x + pending gains R_eᵀ d)
// R, W: [E, r, C] (both f32 or both bf16, widened exactly), b: f32 [E, r]; rows distinct, editor
// indices in [0, E) (the callers check both before a launch). act(0) = 0 for every activation, so an
// editor of smaller rank zero-padded up to r is exact.
//
// Dots are summed in fixed blocks of kReftChunk channels (the blocks' partial sums then added in
// order), so a row's result does not depend on how many rows are edited or on the thread count.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

#if defined(__CUDACC__)
#define MK_REFT_HD __host__ __device__ __forceinline__
#else
#define MK_REFT_HD inline
#endif

namespace mk {

enum class ReftFormula : int { PYREFT = 0, MRT = 1 };
enum class ReftAct : int { IDENTITY = 0, RELU = 1, GELU = 2, SILU = 3, TANH = 4 };
constexpr int kReftFormulas = 2, kReftActs = 5;
// The names the binding and lib/ops.ts use; a name's index is its enum value.
constexpr const char* kReftFormulaNames[kReftFormulas] = {"pyreft", "mrt"};
constexpr const char* kReftActNames[kReftActs] = {"identity", "relu", "gelu", "silu", "tanh"};

inline bool reft_formula_from_name(const std::string& s, ReftFormula* out) {
  for (int i = 0; i < kReftFormulas; ++i)
    if (s == kReftFormulaNames[i]) return (*out = static_cast<ReftFormula>(i), true);
  return false;
}
inline bool reft_act_from_name(const std::string& s, ReftAct* out) {
  for (int i = 0; i < kReftActs; ++i)
    if (s == kReftActNames[i]) return (*out = static_cast<ReftAct>(i), true);
  return false;
}

constexpr int64_t kReftMaxRank = 256;  // u, v and d of a row live in one CUDA block's shared memory
constexpr int64_t kReftChunk = 512;    // channels per partial dot (see above)

struct ReftArgs {
  float* x;               // [*, ldx] the stream
  float* pending;         // [*, ldx] its pending part, or null
  int64_t ldx;
  const int32_t* rows;    // [n] distinct stream rows
  const int32_t* editor;  // [n] editor index per row, in [0, E)
  int64_t n;
  const void* R;          // [E, r, C]
  const void* W;          // [E, r, C]
  DType wdt;              // F32 or BF16 (R and W alike)
  const float* b;         // [E, r]
  int64_t E, r, C;
  ReftFormula formula;
  ReftAct act;
};

// The limits every caller asks before a launch (the kernels assume them).
inline Status reft_can_run(int64_t E, int64_t r, int64_t C, DType wdt, const std::string& where = "reft") {
  if (E < 1 || r < 1 || C < 1 || r > C || r > kReftMaxRank)
    return make_error(Code::SHAPE, where + ": editors E=" + std::to_string(E) + ", rank r=" + std::to_string(r) + ", channels C=" +
                                       std::to_string(C) + " (need E >= 1, 1 <= r <= min(C, 256))");
  if (wdt != DType::F32 && wdt != DType::BF16)
    return make_error(Code::DTYPE, where + ": R and W must be f32 or bf16, got " + dtype_name(wdt));
  return Status::Ok();
}

struct Tensor;
// The tensors of a reft op or edit against a stream of C channels: rows, editor i32 [n]; R, W [E, r, C]
// (f32 or bf16, one dtype); b f32 [E, r]; then reft_can_run. Errors start with `where` and name the
// tensor, the expected and the found shape (E_SHAPE) or dtype (E_DTYPE). Devices are the caller's.
Status check_reft_tensors(const std::string& where, const Tensor& rows, const Tensor& editor, const Tensor& R,
                          const Tensor& W, const Tensor& b, int64_t C);
// Host copies of edited stream rows, distinct and in [0, N), and of their editor indices (null: none)
// in [0, E) — E_ARG naming the first bad one (the add edit checks its rows with it too).
Status check_stream_rows(const std::string& where, const int32_t* rows, int64_t n, int64_t N, const int32_t* editor,
                         int64_t E);

// The activations in f32, host and device (GELU in the exact erfc form of the other kernels).
MK_REFT_HD float reft_act(ReftAct a, float z) {
  switch (a) {
    case ReftAct::RELU: return z > 0.f ? z : 0.f;
    case ReftAct::GELU: return 0.5f * z * erfcf(-z * 0.70710678118654752f);
    case ReftAct::SILU: return z / (1.f + expf(-z));
    case ReftAct::TANH: return tanhf(z);
    default: return z;
  }
}
// d from u = W h + b and v = R h.
MK_REFT_HD float reft_delta(ReftFormula f, ReftAct a, float u, float v) {
  return f == ReftFormula::MRT ? reft_act(a, u - v) : reft_act(a, u) - v;
}

}  // namespace mk
