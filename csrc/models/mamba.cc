#include "models/mamba.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "models/backend.h"

namespace mk {
namespace {

Status expect(const Tensor& t, const char* name, int layer, const Shape& shape, bool weight, const MambaModel& m) {
  const std::string where = layer < 0 ? std::string(name) : "layers." + std::to_string(layer) + "." + name;
  if (!t.storage) return make_error(Code::ARG, "mamba: missing tensor " + where);
  if (t.device() != m.dev) return make_error(Code::DEVICE, "mamba: " + where + " is on " + t.device().str() + ", model on " + m.dev.str());
  if (weight ? !is_float(t.dtype) : t.dtype != DType::F32)
    return make_error(Code::DTYPE, "mamba: " + where + " has dtype " + dtype_name(t.dtype));
  if (t.numel() != shape_numel(shape))
    return make_error(Code::SHAPE, "mamba: " + where + " is " + t.desc() + ", expected " + shape_str(shape));
  return Status::Ok();
}

}  // namespace

Status mamba_validate(const MambaModel& m) {
  const MambaDims& d = m.d;
  if (d.D < 1 || d.L < 1 || d.V < 1 || d.N < 1 || d.N > 256 || d.E < 1 || d.K < 1 || d.K > 8 || d.R < 1)
    return make_error(Code::ARG, "mamba: dims out of range (N in [1, 256], K in [1, 8])");
  if (static_cast<int64_t>(m.layers.size()) != d.L) return make_error(Code::ARG, "mamba: layer count mismatch");
  MK_RETURN_IF_ERROR(expect(m.embedding, "embedding", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.lm_head, "lm_head", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.norm_f, "norm_f", -1, {d.D}, false, m));
  for (int i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    MK_RETURN_IF_ERROR(expect(l.norm, "norm", i, {d.D}, false, m));
    MK_RETURN_IF_ERROR(expect(l.in_proj, "in_proj", i, {2 * d.E, d.D}, true, m));
    if (l.in_proj_bias.storage) MK_RETURN_IF_ERROR(expect(l.in_proj_bias, "in_proj.bias", i, {2 * d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.conv_w, "conv1d", i, {d.E, d.K}, false, m));
    if (l.conv_b.storage) MK_RETURN_IF_ERROR(expect(l.conv_b, "conv1d.bias", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.x_proj, "x_proj", i, {d.R + 2 * d.N, d.E}, true, m));
    MK_RETURN_IF_ERROR(expect(l.dt_proj, "dt_proj", i, {d.E, d.R}, true, m));
    MK_RETURN_IF_ERROR(expect(l.dt_bias, "dt_proj.bias", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.A, "A", i, {d.N, d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.Dskip, "D", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.out_proj, "out_proj", i, {d.D, d.E}, true, m));
    if (l.out_proj_bias.storage) MK_RETURN_IF_ERROR(expect(l.out_proj_bias, "out_proj.bias", i, {d.D}, false, m));
  }
  return Status::Ok();
}

Status mamba_validate_state(const MambaModel& m, const MambaState& s, int64_t* slots) {
  const MambaDims& d = m.d;
  if (!s.conv.storage || !s.ssm.storage) return make_error(Code::ARG, "mamba: state is disposed");
  const bool ok = s.conv.dtype == DType::F32 && s.ssm.dtype == DType::F32 && s.conv.ndim() == 4 && s.ssm.ndim() == 4 &&
                  s.conv.dim(0) == d.L && s.conv.dim(2) == d.K - 1 && s.conv.dim(3) == d.E && s.ssm.dim(0) == d.L &&
                  s.ssm.dim(1) == s.conv.dim(1) && s.ssm.dim(2) == d.N && s.ssm.dim(3) == d.E;
  if (!ok)
    return make_error(Code::SHAPE, "mamba: state (conv " + s.conv.desc() + ", ssm " + s.ssm.desc() +
                                       ") is not from this model (expects conv [L=" + std::to_string(d.L) + ", S, " +
                                       std::to_string(d.K - 1) + ", " + std::to_string(d.E) + "], ssm [L, S, " +
                                       std::to_string(d.N) + ", " + std::to_string(d.E) + "])");
  if (s.conv.device() != m.dev || s.ssm.device() != m.dev)
    return make_error(Code::DEVICE, "mamba: state on " + s.conv.device().str() + ", model on " + m.dev.str());
  *slots = s.conv.dim(1);
  return Status::Ok();
}

namespace {

// f32 activations of one call: res [BT, D] (residual stream), h [BT, D] (a block's output), xn [BT, D],
// xz [BT, 2E], u [BT, E], xdbl [BT, R+2N], dt [BT, E].
struct Workspace {
  Tensor h, res, xn, xz, u, xdbl, dt, flag;  // flag: i32 [1], the embedding's bad-id flag
  Status create(const MambaModel& m, int64_t BT) {
    const MambaDims& d = m.d;
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::I32, {1}, &flag));
    for (auto* p : {&h, &res, &xn}) MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, d.D}, p));
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, 2 * d.E}, &xz));
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, d.E}, &u));
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, d.R + 2 * d.N}, &xdbl));
    return Tensor::create(m.dev, DType::F32, {BT, d.E}, &dt);
  }
};

// Queues the whole forward on `be`: no allocation and no host sync (unless verify_ids), so a decode
// step can be captured into a CUDA graph. conv/ssm: state bases for S slots, or null.
Status launch(const MambaModel& m, Backend& be, const Workspace& ws, const int32_t* tokens, int64_t B, int64_t T,
              float* conv, float* ssm, int64_t S, const int32_t* slots, bool last_only, bool decode, float* logits,
              bool verify_ids) {
  const MambaDims& d = m.d;
  const int64_t BT = B * T, E = d.E, N = d.N, K = d.K, R = d.R, XD = R + 2 * N;
  float *h = ws.h.ptr<float>(), *res = ws.res.ptr<float>(), *xn = ws.xn.ptr<float>(), *xz = ws.xz.ptr<float>();
  float *u = ws.u.ptr<float>(), *xdbl = ws.xdbl.ptr<float>(), *dt = ws.dt.ptr<float>();
  // res = embedding(tokens): the residual stream; h holds each block's output until the next adds it
  MK_RETURN_IF_ERROR(be.embedding(tokens, BT, m.embedding, res, ws.flag.ptr<int32_t>(), verify_ids));
  for (int64_t i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    // res = res + h (from block 1 on); xn = rmsnorm(res) · norm
    MK_RETURN_IF_ERROR(i == 0 ? be.rmsnorm(res, nullptr, l.norm.ptr<float>(), xn, nullptr, BT, d.D, d.eps)
                              : be.rmsnorm(h, res, l.norm.ptr<float>(), xn, res, BT, d.D, d.eps));
    // x, z = split(in_proj(xn)): xz [BT, 2E], x = xz[:, :E], z = xz[:, E:]
    MK_RETURN_IF_ERROR(be.gemm(xn, d.D, l.in_proj, l.in_proj_bias.storage ? &l.in_proj_bias : nullptr, xz, 2 * E, BT));
    // u = silu(conv1d_causal(x)), the conv window carried in the state
    float* cs = conv ? conv + i * S * (K - 1) * E : nullptr;
    const float* cb = l.conv_b.storage ? l.conv_b.ptr<float>() : nullptr;
    MK_RETURN_IF_ERROR(decode ? be.conv1d_update(xz, 2 * E, l.conv_w.ptr<float>(), cb, cs, slots, u, E, B, E, K)
                              : be.causal_conv1d(xz, 2 * E, l.conv_w.ptr<float>(), cb, cs, slots, u, E, B, T, E, K));
    // dt, B, C = split(x_proj(u), [R, N, N]); dt = dt_proj(dt) (its bias and softplus are fused into the scan)
    MK_RETURN_IF_ERROR(be.gemm(u, E, l.x_proj, nullptr, xdbl, XD, BT));
    MK_RETURN_IF_ERROR(be.gemm(xdbl, XD, l.dt_proj, nullptr, dt, E, BT));
    // y = (C·s + D·u) ⊙ silu(z), s_t = exp(dt·A) s_{t-1} + dt·B·u; y is written over u
    float* ss = ssm ? ssm + i * S * N * E : nullptr;
    MK_RETURN_IF_ERROR(be.selective_scan(u, E, dt, E, l.dt_bias.ptr<float>(), l.A.ptr<float>(), xdbl + R, xdbl + R + N, XD,
                                         l.Dskip.ptr<float>(), xz + E, 2 * E, u, E, ss, slots, B, T, E, N));
    // h = out_proj(y)
    MK_RETURN_IF_ERROR(be.gemm(u, E, l.out_proj, l.out_proj_bias.storage ? &l.out_proj_bias : nullptr, h, d.D, BT));
  }
  // logits = rmsnorm(h + res) · norm_f · lm_headᵀ (only the last position of each row when asked)
  MK_RETURN_IF_ERROR(be.rmsnorm(h, res, m.norm_f.ptr<float>(), xn, res, BT, d.D, d.eps));
  if (last_only) return be.gemm(xn + (T - 1) * d.D, T * d.D, m.lm_head, nullptr, logits, d.V, B);
  return be.gemm(xn, d.D, m.lm_head, nullptr, logits, d.V, BT);
}

bool graphs_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MAMBAKIT_CUDA_GRAPHS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

}  // namespace

// A decode step captured for one (batch, state buffers, slots?) with its own inputs, workspace and
// logits, so a replay touches exactly the memory it was captured with.
struct DecodeGraph {
  int64_t B = 0;
  const void *conv = nullptr, *ssm = nullptr;
  bool with_slots = false;
  Tensor tokens, slots, logits;
  Workspace ws;
  void* exec = nullptr;
  ~DecodeGraph() { gpu::graph_destroy(exec); }
};

namespace {

constexpr size_t kMaxGraphs = 8;

Status decode_with_graph(const MambaModel& m, Backend& be, const Tensor& tokens, MambaState& st, int64_t S,
                         const Tensor* slot_ids, Tensor* logits) {
  const int64_t B = tokens.dim(0);
  const int dev = m.dev.index;
  auto& cache = m.graphs->entries;
  std::shared_ptr<DecodeGraph> g;
  for (size_t i = 0; i < cache.size(); ++i)
    if (cache[i]->B == B && cache[i]->conv == st.conv.raw() && cache[i]->ssm == st.ssm.raw() &&
        cache[i]->with_slots == (slot_ids != nullptr)) {
      g = cache[i];
      cache.erase(cache.begin() + i);
      break;
    }
  const bool fresh = !g;
  if (fresh) {
    g = std::make_shared<DecodeGraph>();
    g->B = B, g->conv = st.conv.raw(), g->ssm = st.ssm.raw(), g->with_slots = slot_ids != nullptr;
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::I32, {B, 1}, &g->tokens));
    if (slot_ids) MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::I32, {B}, &g->slots));
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {B, m.d.V}, &g->logits));
    MK_RETURN_IF_ERROR(g->ws.create(m, B));
  }
  // the step's inputs go into the buffers the graph reads
  MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, g->tokens.raw(), tokens.raw(), tokens.nbytes()));
  if (slot_ids) MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, g->slots.raw(), slot_ids->raw(), slot_ids->nbytes()));
  if (fresh) {
    MK_RETURN_IF_ERROR(gpu::capture_begin(dev));
    Status s = launch(m, be, g->ws, g->tokens.ptr<int32_t>(), B, 1, st.conv.ptr<float>(), st.ssm.ptr<float>(), S,
                      slot_ids ? g->slots.ptr<int32_t>() : nullptr, true, true, g->logits.ptr<float>(), false);
    Status e = gpu::capture_end(dev, &g->exec);
    MK_RETURN_IF_ERROR(s);
    MK_RETURN_IF_ERROR(e);
  }
  MK_RETURN_IF_ERROR(gpu::graph_launch(dev, g->exec));
  // the caller owns its logits; the graph's buffer is overwritten by the next replay
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {B, m.d.V}, logits));
  MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, logits->raw(), g->logits.raw(), logits->nbytes()));
  cache.push_back(g);
  if (cache.size() > kMaxGraphs) cache.erase(cache.begin());
  return be.finish("mamba decode step (CUDA graph)");
}

}  // namespace

Status mamba_forward(const MambaModel& m, const Tensor& tokens, MambaState* state, const Tensor* slot_ids,
                     bool last_only, bool decode, Tensor* logits) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  std::unique_ptr<Backend> be;
  MK_RETURN_IF_ERROR(make_backend(m.dev, &be));
  int64_t S = 0;
  if (state) MK_RETURN_IF_ERROR(mamba_validate_state(m, *state, &S));
  if (decode && state && m.dev.is_cuda() && graphs_enabled())
    return decode_with_graph(m, *be, tokens, *state, S, slot_ids, logits);
  Workspace ws;
  MK_RETURN_IF_ERROR(ws.create(m, B * T));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, last_only ? Shape{B, m.d.V} : Shape{B, T, m.d.V}, logits));
  MK_RETURN_IF_ERROR(launch(m, *be, ws, tokens.ptr<int32_t>(), B, T, state ? state->conv.ptr<float>() : nullptr,
                            state ? state->ssm.ptr<float>() : nullptr, S, slot_ids ? slot_ids->ptr<int32_t>() : nullptr,
                            last_only, decode, logits->ptr<float>(), true));
  return be->finish("mamba forward");
}

}  // namespace mk
