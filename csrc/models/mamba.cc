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

namespace {

// A projection that is either shared ([out, in], bias [out]) or per modality ([M, out, in], bias [M, out]).
Status expect_proj(const Tensor& w, const Tensor& b, const char* name, int layer, int64_t out, int64_t in,
                   const MambaModel& m) {
  const bool stacked = w.storage && w.ndim() == 3;
  const int64_t M = m.d.M;
  if (stacked && w.dim(0) != M)
    return make_error(Code::SHAPE, "mamba: layers." + std::to_string(layer) + "." + name + " is " + w.desc() +
                                       ", expected [" + std::to_string(M) + ", " + std::to_string(out) + ", " +
                                       std::to_string(in) + "] (one weight per modality)");
  MK_RETURN_IF_ERROR(expect(w, name, layer, stacked ? Shape{M, out, in} : Shape{out, in}, true, m));
  if (b.storage) {
    const std::string bn = std::string(name) + ".bias";
    MK_RETURN_IF_ERROR(expect(b, bn.c_str(), layer, stacked ? Shape{M, out} : Shape{out}, false, m));
  }
  return Status::Ok();
}

}  // namespace

Status mamba_validate(MambaModel& m) {
  const MambaDims& d = m.d;
  if (d.D < 1 || d.L < 1 || d.V < 1 || d.N < 1 || d.N > 256 || d.E < 1 || d.K < 1 || d.K > 8 || d.R < 1 || d.M < 1 ||
      d.M > 4096)
    return make_error(Code::ARG, "mamba: dims out of range (N in [1, 256], K in [1, 8], modalities in [1, 4096])");
  if (static_cast<int64_t>(m.layers.size()) != d.L) return make_error(Code::ARG, "mamba: layer count mismatch");
  MK_RETURN_IF_ERROR(expect(m.embedding, "embedding", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.lm_head, "lm_head", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.norm_f, "norm_f", -1, {d.D}, false, m));
  m.state_layers = m.moe_layers = 0;
  for (int i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    MK_RETURN_IF_ERROR(expect(l.norm, "norm", i, {d.D}, false, m));
    if (l.kind == BlockKind::MOE) {
      if (d.Ne < 1 || d.Ne > 256 || d.topk < 1 || d.topk > 8 || d.topk > d.Ne || d.F < 1)
        return make_error(Code::ARG, "mamba: MoE dims out of range (experts in [1, 256], top-k in [1, min(8, experts)], "
                                     "got experts=" + std::to_string(d.Ne) + " k=" + std::to_string(d.topk) + ")");
      const bool glu = d.act == kSwiGLU;
      if (!glu && (d.act < 1 || d.act > 3)) return make_error(Code::ARG, "mamba: unknown expert activation");
      MK_RETURN_IF_ERROR(expect(l.router, "moe.router", i, {d.Ne, d.D}, false, m));
      MK_RETURN_IF_ERROR(expect(l.w_in, "moe.experts.w_in", i, {d.Ne, glu ? 2 * d.F : d.F, d.D}, true, m));
      MK_RETURN_IF_ERROR(expect(l.w_out, "moe.experts.w_out", i, {d.Ne, d.D, d.F}, true, m));
      if (l.w_in.ndim() != 3 || l.w_out.ndim() != 3)
        return make_error(Code::SHAPE, "mamba: layers." + std::to_string(i) + " expert weights must be stacked [experts, out, in]");
      ++m.moe_layers;
      continue;
    }
    ++m.state_layers;
    MK_RETURN_IF_ERROR(expect_proj(l.in_proj, l.in_proj_bias, "in_proj", i, 2 * d.E, d.D, m));
    MK_RETURN_IF_ERROR(expect(l.conv_w, "conv1d", i, {d.E, d.K}, false, m));
    if (l.conv_b.storage) MK_RETURN_IF_ERROR(expect(l.conv_b, "conv1d.bias", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect_proj(l.x_proj, Tensor(), "x_proj", i, d.R + 2 * d.N, d.E, m));
    MK_RETURN_IF_ERROR(expect_proj(l.dt_proj, l.dt_bias, "dt_proj", i, d.E, d.R, m));
    if (!l.dt_bias.storage) return make_error(Code::ARG, "mamba: missing tensor layers." + std::to_string(i) + ".dt_proj.bias");
    MK_RETURN_IF_ERROR(expect(l.A, "A", i, {d.N, d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.Dskip, "D", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect_proj(l.out_proj, l.out_proj_bias, "out_proj", i, d.D, d.E, m));
    if (d.M == 1) {
      // One modality: a stacked [1, out, in] weight is the plain one (same bytes); view it so, and the
      // block runs the dense kernels — exactly the dense model on every backend, with no sort.
      MambaLayer& ml = m.layers[i];
      for (Tensor* w : {&ml.in_proj, &ml.x_proj, &ml.dt_proj, &ml.out_proj})
        if (w->ndim() == 3) w->shape.erase(w->shape.begin());
      for (Tensor* b : {&ml.in_proj_bias, &ml.dt_bias, &ml.out_proj_bias})
        if (b->storage && b->ndim() == 2) b->shape.erase(b->shape.begin());
    }
  }
  m.per_modality = false;
  for (const MambaLayer& l : m.layers)
    if (l.kind == BlockKind::MAMBA &&
        (l.in_proj.ndim() == 3 || l.x_proj.ndim() == 3 || l.dt_proj.ndim() == 3 || l.out_proj.ndim() == 3))
      m.per_modality = true;
  if (m.moe_layers > 0) {
    const Tensor& c = m.expert_counts;
    if (!c.storage || c.dtype != DType::I32 || c.numel() != m.moe_layers * d.Ne || c.device() != m.dev)
      return make_error(Code::ARG, "mamba: expert_counts must be i32 [" + std::to_string(m.moe_layers) + ", " +
                                       std::to_string(d.Ne) + "] on " + m.dev.str());
  }
  return Status::Ok();
}

Status mamba_validate_state(const MambaModel& m, const MambaState& s, int64_t* slots) {
  const MambaDims& d = m.d;
  if (!s.conv.storage || !s.ssm.storage) return make_error(Code::ARG, "mamba: state is disposed");
  const bool ok = s.conv.dtype == DType::F32 && s.ssm.dtype == DType::F32 && s.conv.ndim() == 4 && s.ssm.ndim() == 4 &&
                  s.conv.dim(0) == m.state_layers && s.conv.dim(2) == d.K - 1 && s.conv.dim(3) == d.E &&
                  s.ssm.dim(0) == m.state_layers &&
                  s.ssm.dim(1) == s.conv.dim(1) && s.ssm.dim(2) == d.N && s.ssm.dim(3) == d.E;
  if (!ok)
    return make_error(Code::SHAPE, "mamba: state (conv " + s.conv.desc() + ", ssm " + s.ssm.desc() +
                                       ") is not from this model (expects conv [L=" + std::to_string(m.state_layers) + ", S, " +
                                       std::to_string(d.K - 1) + ", " + std::to_string(d.E) + "], ssm [L, S, " +
                                       std::to_string(d.N) + ", " + std::to_string(d.E) + "])");
  if (s.conv.device() != m.dev || s.ssm.device() != m.dev)
    return make_error(Code::DEVICE, "mamba: state on " + s.conv.device().str() + ", model on " + m.dev.str());
  *slots = s.conv.dim(1);
  return Status::Ok();
}

namespace {


// Activations of one call (f32 unless noted): res [BT, D] (residual stream), h [BT, D] (a block's
// output), xn [BT, D], xz [BT, 2E], u [BT, E], xdbl [BT, R+2N], dt [BT, E]; flag i32 [1] (bad id).
// Mixture-of-Mamba: the modality sort of the BT rows (moff [M+1], msrc, mpos [BT]). MoE: router
// logits rl [BT, Ne], choices ids/gates [BT, k], the expert sort (eoff [Ne+1], esrc, epos [BT·k]),
// expert activations h1 [BT·k, F or 2F] and h2 [BT·k, D].
struct Workspace {
  Tensor h, res, xn, xz, u, xdbl, dt, flag;
  Tensor moff, msrc, mpos;
  Tensor rl, ids, gates, eoff, esrc, epos, h1, h2;
  Status create(const MambaModel& m, int64_t BT) {
    const MambaDims& d = m.d;
    auto f32 = [&](Shape s, Tensor* t) { return Tensor::create(m.dev, DType::F32, std::move(s), t); };
    auto i32 = [&](Shape s, Tensor* t) { return Tensor::create(m.dev, DType::I32, std::move(s), t); };
    MK_RETURN_IF_ERROR(i32({1}, &flag));
    for (auto* p : {&h, &res, &xn}) MK_RETURN_IF_ERROR(f32({BT, d.D}, p));
    MK_RETURN_IF_ERROR(f32({BT, 2 * d.E}, &xz));
    MK_RETURN_IF_ERROR(f32({BT, d.E}, &u));
    MK_RETURN_IF_ERROR(f32({BT, d.R + 2 * d.N}, &xdbl));
    MK_RETURN_IF_ERROR(f32({BT, d.E}, &dt));
    if (m.per_modality) {
      MK_RETURN_IF_ERROR(i32({d.M + 1}, &moff));
      MK_RETURN_IF_ERROR(i32({BT}, &msrc));
      MK_RETURN_IF_ERROR(i32({BT}, &mpos));
    }
    if (m.moe_layers > 0) {
      const int64_t n = BT * d.topk;
      MK_RETURN_IF_ERROR(f32({BT, d.Ne}, &rl));
      MK_RETURN_IF_ERROR(i32({n}, &ids));
      MK_RETURN_IF_ERROR(f32({n}, &gates));
      MK_RETURN_IF_ERROR(i32({d.Ne + 1}, &eoff));
      MK_RETURN_IF_ERROR(i32({n}, &esrc));
      MK_RETURN_IF_ERROR(i32({n}, &epos));
      MK_RETURN_IF_ERROR(f32({n, d.act == kSwiGLU ? 2 * d.F : d.F}, &h1));
      MK_RETURN_IF_ERROR(f32({n, d.D}, &h2));
    }
    return Status::Ok();
  }
};

// h = Σ_j gate_j · expert_j(xn) over each token's top-k experts (dropless: every pair is computed).
Status moe_block(const MambaModel& m, const MambaLayer& l, int64_t moe_index, Backend& be, const Workspace& ws,
                 int64_t BT, const float* xn, float* h) {
  const MambaDims& d = m.d;
  const int64_t k = d.topk, n = BT * k, F = d.F;
  const bool glu = d.act == kSwiGLU;
  const int64_t F1 = glu ? 2 * F : F;
  float *rl = ws.rl.ptr<float>(), *gates = ws.gates.ptr<float>(), *h1 = ws.h1.ptr<float>(), *h2 = ws.h2.ptr<float>();
  int32_t *ids = ws.ids.ptr<int32_t>(), *eoff = ws.eoff.ptr<int32_t>();
  int32_t *esrc = ws.esrc.ptr<int32_t>(), *epos = ws.epos.ptr<int32_t>();
  MK_RETURN_IF_ERROR(be.gemm(xn, d.D, l.router, nullptr, rl, d.Ne, BT));
  MK_RETURN_IF_ERROR(be.router_topk(rl, BT, d.Ne, k, d.renorm, ids, gates,
                                    m.expert_counts.ptr<int32_t>() + moe_index * d.Ne));
  // expert ids come from the router: always in range, nothing to verify
  MK_RETURN_IF_ERROR(be.group_sort(ids, BT, k, d.Ne, eoff, esrc, epos, nullptr, false));
  MK_RETURN_IF_ERROR(be.grouped_gemm(xn, d.D, esrc, l.w_in, nullptr, eoff, n, glu ? Act::NONE : static_cast<Act>(d.act),
                                     h1, F1, nullptr));
  if (glu) MK_RETURN_IF_ERROR(be.swiglu(h1, F1, n, F));
  MK_RETURN_IF_ERROR(be.grouped_gemm(h1, F1, nullptr, l.w_out, nullptr, eoff, n, Act::NONE, h2, d.D, nullptr));
  return be.combine(h2, d.D, epos, gates, BT, k, d.D, h, d.D);
}

// Queues the whole forward on `be`: no allocation and no host sync (unless verify_ids), so a decode
// step can be captured into a CUDA graph. conv/ssm: state bases for S slots, or null.
Status launch(const MambaModel& m, Backend& be, const Workspace& ws, const int32_t* tokens, const float* embeds,
              const int32_t* modality,
              int64_t B, int64_t T, float* conv, float* ssm, int64_t S, const int32_t* slots, bool last_only,
              bool decode, float* logits, bool verify_ids) {
  const MambaDims& d = m.d;
  const int64_t BT = B * T, E = d.E, N = d.N, K = d.K, R = d.R, XD = R + 2 * N;
  float *h = ws.h.ptr<float>(), *res = ws.res.ptr<float>(), *xn = ws.xn.ptr<float>(), *xz = ws.xz.ptr<float>();
  float *u = ws.u.ptr<float>(), *xdbl = ws.xdbl.ptr<float>(), *dt = ws.dt.ptr<float>();
  // res = embedding(tokens): the residual stream; h holds each block's output until the next adds it
  // (or the caller's input embeddings, e.g. continuous image latents)
  MK_RETURN_IF_ERROR(embeds ? be.copy(res, embeds, BT * d.D)
                            : be.embedding(tokens, BT, m.embedding, res, ws.flag.ptr<int32_t>(), verify_ids));
  // Mixture-of-Mamba: bucket the rows by modality once; every per-modality projection reuses it
  const bool stacked = ws.moff.storage != nullptr;
  const int32_t* moff = stacked ? ws.moff.ptr<int32_t>() : nullptr;
  const int32_t* msrc = stacked ? ws.msrc.ptr<int32_t>() : nullptr;
  if (stacked)
    MK_RETURN_IF_ERROR(be.group_sort(modality, BT, 1, d.M, ws.moff.ptr<int32_t>(), ws.msrc.ptr<int32_t>(),
                                     ws.mpos.ptr<int32_t>(), ws.flag.ptr<int32_t>(), verify_ids));
  // y = x·Wᵀ (+ b) with the token's modality weight when W is stacked [M, out, in]
  auto proj = [&](const float* x, int64_t ldx, const Tensor& w, const Tensor& b, float* y, int64_t ldy) {
    const float* bias = b.storage ? b.ptr<float>() : nullptr;
    if (w.ndim() == 3) return be.grouped_gemm(x, ldx, msrc, w, bias, moff, BT, Act::NONE, y, ldy, msrc);
    return be.gemm(x, ldx, w, b.storage ? &b : nullptr, y, ldy, BT);
  };
  int64_t si = 0, mi = 0;  // state layer and MoE layer counters
  for (int64_t i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    // res = res + h (from block 1 on); xn = rmsnorm(res) · norm
    MK_RETURN_IF_ERROR(i == 0 ? be.rmsnorm(res, nullptr, l.norm.ptr<float>(), xn, nullptr, BT, d.D, d.eps)
                              : be.rmsnorm(h, res, l.norm.ptr<float>(), xn, res, BT, d.D, d.eps));
    if (l.kind == BlockKind::MOE) {
      MK_RETURN_IF_ERROR(moe_block(m, l, mi++, be, ws, BT, xn, h));
      continue;
    }
    // x, z = split(in_proj(xn)): xz [BT, 2E], x = xz[:, :E], z = xz[:, E:]
    MK_RETURN_IF_ERROR(proj(xn, d.D, l.in_proj, l.in_proj_bias, xz, 2 * E));
    // u = silu(conv1d_causal(x)), the conv window carried in the state
    float* cs = conv ? conv + si * S * (K - 1) * E : nullptr;
    const float* cb = l.conv_b.storage ? l.conv_b.ptr<float>() : nullptr;
    MK_RETURN_IF_ERROR(decode ? be.conv1d_update(xz, 2 * E, l.conv_w.ptr<float>(), cb, cs, slots, u, E, B, E, K)
                              : be.causal_conv1d(xz, 2 * E, l.conv_w.ptr<float>(), cb, cs, slots, u, E, B, T, E, K));
    // dt, B, C = split(x_proj(u), [R, N, N]); dt = dt_proj(dt): its bias and softplus are fused into the
    // scan, except a per-modality bias, which the grouped GEMM adds
    MK_RETURN_IF_ERROR(proj(u, E, l.x_proj, Tensor(), xdbl, XD));
    const bool dt_stacked = l.dt_proj.ndim() == 3;
    MK_RETURN_IF_ERROR(proj(xdbl, XD, l.dt_proj, dt_stacked ? l.dt_bias : Tensor(), dt, E));
    // y = (C·s + D·u) ⊙ silu(z), s_t = exp(dt·A) s_{t-1} + dt·B·u; y is written over u
    float* ss = ssm ? ssm + si * S * N * E : nullptr;
    MK_RETURN_IF_ERROR(be.selective_scan(u, E, dt, E, dt_stacked ? nullptr : l.dt_bias.ptr<float>(), l.A.ptr<float>(),
                                         xdbl + R, xdbl + R + N, XD, l.Dskip.ptr<float>(), xz + E, 2 * E, u, E, ss, slots,
                                         B, T, E, N));
    // h = out_proj(y)
    MK_RETURN_IF_ERROR(proj(u, E, l.out_proj, l.out_proj_bias, h, d.D));
    ++si;
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
  Tensor tokens, modality, slots, logits;
  Workspace ws;
  void* exec = nullptr;
  ~DecodeGraph() { gpu::graph_destroy(exec); }
};

namespace {

constexpr size_t kMaxGraphs = 8;

Status decode_with_graph(const MambaModel& m, Backend& be, const Tensor& tokens, const Tensor* modality, MambaState& st,
                         int64_t S, const Tensor* slot_ids, Tensor* logits) {
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
    if (modality) MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::I32, {B, 1}, &g->modality));
    if (slot_ids) MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::I32, {B}, &g->slots));
    MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {B, m.d.V}, &g->logits));
    MK_RETURN_IF_ERROR(g->ws.create(m, B));
  }
  // the step's inputs go into the buffers the graph reads
  MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, g->tokens.raw(), tokens.raw(), tokens.nbytes()));
  if (modality) MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, g->modality.raw(), modality->raw(), modality->nbytes()));
  if (slot_ids) MK_RETURN_IF_ERROR(gpu::copy_d2d(dev, g->slots.raw(), slot_ids->raw(), slot_ids->nbytes()));
  if (fresh) {
    MK_RETURN_IF_ERROR(gpu::capture_begin(dev));
    Status s = launch(m, be, g->ws, g->tokens.ptr<int32_t>(), nullptr, modality ? g->modality.ptr<int32_t>() : nullptr, B, 1, st.conv.ptr<float>(), st.ssm.ptr<float>(), S,
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

Status mamba_forward(const MambaModel& m, const Tensor& tokens, const Tensor* modality, MambaState* state,
                     const Tensor* slot_ids, bool last_only, bool decode, Tensor* logits) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  if (!m.per_modality) modality = nullptr;  // only per-modality projections read it
  else if (!modality)
    return make_error(Code::ARG, "mamba: this model has per-modality projections: modality ids are required");
  else if (modality->dtype != DType::I32 || modality->numel() != B * T || modality->device() != m.dev)
    return make_error(Code::SHAPE, "mamba: modality ids must be i32 [" + std::to_string(B) + ", " + std::to_string(T) + "] on " + m.dev.str() +
                                       " (one per token), got " + modality->desc());
  std::unique_ptr<Backend> be;
  MK_RETURN_IF_ERROR(make_backend(m.dev, &be));
  int64_t S = 0;
  if (state) MK_RETURN_IF_ERROR(mamba_validate_state(m, *state, &S));
  const bool embeds = tokens.dtype == DType::F32;  // input embeddings [B, T, D] instead of token ids
  if (decode && state && !embeds && m.dev.is_cuda() && graphs_enabled())
    return decode_with_graph(m, *be, tokens, modality, *state, S, slot_ids, logits);
  Workspace ws;
  MK_RETURN_IF_ERROR(ws.create(m, B * T));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, last_only ? Shape{B, m.d.V} : Shape{B, T, m.d.V}, logits));
  MK_RETURN_IF_ERROR(launch(m, *be, ws, embeds ? nullptr : tokens.ptr<int32_t>(), embeds ? tokens.ptr<float>() : nullptr,
                            modality ? modality->ptr<int32_t>() : nullptr, B, T, state ? state->conv.ptr<float>() : nullptr,
                            state ? state->ssm.ptr<float>() : nullptr, S, slot_ids ? slot_ids->ptr<int32_t>() : nullptr,
                            last_only, decode, logits->ptr<float>(), true));
  return be->finish("mamba forward");
}

}  // namespace mk
