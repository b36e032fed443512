#include "plan/plan.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace mk {

// A decode step captured for one key (batch, state buffers, slots?, modality?, edits: their ops, index
// sizes and weight buffers) with its own inputs (token ids, modality, slots, the edits' rows and editor
// indices), workspace and output, so a replay touches exactly the memory it was captured with.
struct Plan::Graph {
  std::vector<uintptr_t> key;
  CallInputs in;  // the capture's inputs: its own copies of input / modality / slots
  Tensor out;
  std::unique_ptr<Arena> ws;
  void* exec = nullptr;
  ~Graph() { gpu::graph_destroy(exec); }
};

namespace {

constexpr size_t kMaxGraphs = 8;

bool graphs_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MAMBAKIT_CUDA_GRAPHS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

std::string parts_desc(const std::vector<Tensor>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size() && i < 2; ++i) s += (i ? ", " : "") + (parts[i].storage ? parts[i].desc() : "-");
  if (parts.size() > 2) s += ", … (" + std::to_string(parts.size()) + " tensors)";
  return s;
}

}  // namespace

Plan::~Plan() = default;

Status Plan::finalize() {
  if (!embed_ || !head_ || blocks_.empty()) return make_error(Code::ARG, family_ + ": a plan needs an embed, blocks and a head");
  state_parts_ = 0;
  pending_ = false;
  for (auto& b : blocks_) {
    const int64_t n = static_cast<int64_t>(b->state_shapes(1).size());
    b->state_base = n == 0 ? -1 : static_cast<int>(state_parts_);
    state_parts_ += n;
    pending_ = pending_ || b->uses_pending();
  }
  return Status::Ok();
}

std::vector<Shape> Plan::state_shapes(int64_t context) const {
  std::vector<Shape> out;
  for (const auto& b : blocks_) {
    const auto shapes = b->state_shapes(context);
    out.insert(out.end(), shapes.begin(), shapes.end());
  }
  return out;
}

Status Plan::new_state(int64_t slots, int64_t context, PlanState* out) const {
  if (slots < 1) return make_error(Code::ARG, family_ + ": a state needs at least one slot");
  if (!recurrent_) return make_error(Code::ARG, family_ + ": this model keeps no recurrent state");
  if (positional_ && (context < 1 || context > max_positions_))
    return make_error(Code::ARG, family_ + ": a state of this model needs a context length in [1, " + std::to_string(max_positions_) +
                                     "] (positions per sequence), got " + std::to_string(context));
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(dev_, &be));
  PlanState s;
  s.slots = slots;
  s.context = positional_ ? context : 0;
  for (const Shape& per : state_shapes(s.context)) {
    Shape shape{slots};
    shape.insert(shape.end(), per.begin(), per.end());
    Tensor t;
    MK_RETURN_IF_ERROR(Tensor::create(dev_, DType::F32, shape, &t));
    MK_RETURN_IF_ERROR(be->zero(t.raw(), t.nbytes()));
    s.parts.push_back(std::move(t));
  }
  // no wait: the zeroing is queued on the device's one stream before any call that uses the state
  *out = std::move(s);
  return Status::Ok();
}

Status Plan::check_state(const PlanState& s) const {
  if (s.disposed) return make_error(Code::ARG, family_ + ": state is disposed");
  const std::vector<Shape> state_shapes_ = state_shapes(s.context);
  bool ok = s.parts.size() == state_shapes_.size() && s.slots >= 1 && (s.context > 0) == positional_;
  for (size_t i = 0; ok && i < s.parts.size(); ++i) {
    Shape want{s.slots};
    want.insert(want.end(), state_shapes_[i].begin(), state_shapes_[i].end());
    ok = s.parts[i].dtype == DType::F32 && s.parts[i].shape == want;
  }
  if (!ok) {
    std::string want;
    for (size_t i = 0; i < state_shapes_.size() && i < 2; ++i) want += (i ? ", " : "") + shape_str(state_shapes_[i]);
    return make_error(Code::SHAPE, family_ + ": state (" + parts_desc(s.parts) + ") is not from this model (expects " +
                                       std::to_string(state_shapes_.size()) + " tensors [S, ...] per slot " + want +
                                       (state_shapes_.size() > 2 ? ", …" : "") + ")");
  }
  for (const Tensor& t : s.parts)
    if (t.device() != dev_)
      return make_error(Code::DEVICE, family_ + ": state on " + t.device().str() + ", model on " + dev_.str());
  return Status::Ok();
}

Status Plan::zero_slot(const PlanState& s, int64_t slot) const {
  MK_RETURN_IF_ERROR(check_state(s));
  if (slot < 0 || slot >= s.slots)
    return make_error(Code::ARG, family_ + ": slot " + std::to_string(slot) + " is outside [0, " + std::to_string(s.slots) + ")");
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(dev_, &be));
  for (const Tensor& t : s.parts) {
    const size_t per = t.nbytes() / static_cast<size_t>(s.slots);
    MK_RETURN_IF_ERROR(be->zero(static_cast<char*>(t.raw()) + static_cast<size_t>(slot) * per, per));
  }
  return be->finish("zero slot");
}

Geometry Plan::final_geometry(const Geometry& g) const {
  const std::vector<Geometry> gs = geometries(g);
  return gs.empty() ? g : gs.back();
}

std::vector<Geometry> Plan::geometries(const Geometry& g) const {
  std::vector<Geometry> out;
  Geometry cur = g;
  for (const auto& b : blocks_) out.push_back(cur = b->output(cur));
  return out;
}

Status Plan::check_call(const CallInputs& in) const {
  Geometry g;
  MK_RETURN_IF_ERROR(embed_->check(in, &g));
  const int64_t B = g.B;
  const std::string fwd = family_ + (in.decode ? " step" : " forward");
  if (in.decode && g.T() != 1)
    return make_error(Code::SHAPE, family_ + " step: one token per sequence, got " + in.input.desc());
  if (in.has_state) {
    if (!recurrent_) return make_error(Code::ARG, fwd + ": this model keeps no recurrent state");
    MK_RETURN_IF_ERROR(check_state(in.state));
    if (!in.slots.storage && in.state.slots != B)
      return make_error(Code::SHAPE, fwd + ": state holds " + std::to_string(in.state.slots) +
                                         " sequences, tokens have batch " + std::to_string(B));
  }
  if (in.slots.storage) {
    if (!in.has_state) return make_error(Code::ARG, fwd + ": slots given without a state");
    if (in.slots.dtype != DType::I32 || in.slots.numel() != B || in.slots.device() != dev_)
      return make_error(Code::SHAPE, fwd + ": slots must be i32 [B] on the model's device, got " + in.slots.desc());
  }
  if (!positional_ && (in.pos0 != 0 || in.keys != 0 || in.key_bias.storage))
    return make_error(Code::ARG, fwd + ": offset, keys and keyBias are for attention models");
  if (positional_) {
    const int64_t T = g.T(), Tk = in.key_count(T);
    const int64_t ctx = in.has_state ? in.state.context : std::min(T, max_positions_);
    if (in.pos0 < 0 || in.keys < 0 || in.pos0 + T > ctx || Tk > ctx || (!in.has_state && (in.pos0 != 0 || Tk != T)))
      return make_error(Code::ARG, fwd + ": tokens at positions [" + std::to_string(in.pos0) + ", " + std::to_string(in.pos0 + T) +
                                       ") attending to keys [0, " + std::to_string(Tk) + ") do not fit " +
                                       (in.has_state ? "the state's context of " + std::to_string(ctx) + " positions"
                                                     : std::string("a call without a state (offset 0, keys = T = ") + std::to_string(T) + ")"));
    if (in.key_bias.storage &&
        (in.key_bias.dtype != DType::F32 || in.key_bias.shape != Shape{B, Tk} || in.key_bias.device() != dev_))
      return make_error(Code::SHAPE, fwd + ": keyBias must be f32 [" + std::to_string(B) + ", " + std::to_string(Tk) +
                                         "] on the model's device, got " + in.key_bias.desc());
  }
  if (in.head_count != -1 || in.head_from != 0) {
    const int64_t T = g.T();
    if (in.head_from < 0 || in.head_count < 1 || in.head_from + in.head_count > T)
      return make_error(Code::ARG, fwd + ": logits rows [" + std::to_string(in.head_from) + ", " +
                                       std::to_string(in.head_from + in.head_count) + ") outside the " + std::to_string(T) + " positions");
  }
  const std::vector<Geometry> gs = geometries(g);
  for (const Edit& e : in.edits) {
    const int64_t n = static_cast<int64_t>(blocks_.size());
    MK_RETURN_IF_ERROR(check_edit(e, n, dev_, e.after >= 0 && e.after < n ? gs[e.after].C : 0));
  }
  return Status::Ok();
}

void Plan::stream_buffers(Arena& a, const Geometry& g, int32_t** flag, Residual* r) const {
  int64_t stream = g.rows() * g.C;
  bool alt = false;
  for (const Geometry& o : geometries(g)) {
    stream = std::max(stream, o.rows() * o.C);
    alt = alt || o.rows() != g.rows() || o.C != g.C;
  }
  *flag = a.i32(1);
  r->g = g;
  r->x = a.f32(stream);
  if (pending_) r->pending = a.f32(stream);
  if (alt) r->alt = a.f32(stream);
}

size_t Plan::workspace_bytes(Backend& be, const CallInputs& in, const Geometry& g) const {
  Arena a = Arena::counter();
  RunCtx c{be, a, in, false};
  Residual r;
  stream_buffers(a, g, &c.flag, &r);
  embed_->call_buffers(c, a);
  const size_t base = a.mark();
  size_t most = 0;
  Geometry cur = g;
  for (const auto& b : blocks_) {
    a.release(base);
    b->scratch(a, cur);
    most = std::max(most, a.used());
    cur = b->output(cur);
  }
  a.release(base);
  head_->scratch(a, cur);
  return std::max(most, a.used());
}

Status Plan::launch(RunCtx& c, const Geometry& g, float* out) const {
  Residual r;
  stream_buffers(c.ws, g, &c.flag, &r);
  embed_->call_buffers(c, c.ws);
  if (c.ws.overflowed()) return make_error(Code::ARG, family_ + ": workspace overflow (a plan bug)");
  MK_RETURN_IF_ERROR(embed_->run(c, r));
  const size_t base = c.ws.mark();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Geometry next = blocks_[i]->output(r.g);
    MK_RETURN_IF_ERROR(blocks_[i]->run(c, r));
    r.g = next;
    if (c.ws.overflowed()) return make_error(Code::ARG, family_ + ": workspace overflow in a " + blocks_[i]->kind() + " block");
    c.ws.release(base);
    for (const Edit& e : c.in.edits)  // the edit point after block i
      if (e.after == static_cast<int64_t>(i)) MK_RETURN_IF_ERROR(apply_edit(c.be, e, r));
  }
  MK_RETURN_IF_ERROR(head_->run(c, r, out));
  if (c.ws.overflowed()) return make_error(Code::ARG, family_ + ": workspace overflow in the head");
  return Status::Ok();
}

Status Plan::forward(const CallInputs& in, Tensor* out) const {
  Geometry g;
  MK_RETURN_IF_ERROR(embed_->check(in, &g));
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(dev_, &be));
  if (!in.edits.empty()) {
    const std::vector<Geometry> gs = geometries(g);
    for (const Edit& e : in.edits) MK_RETURN_IF_ERROR(check_edit_rows(*be, e, gs[e.after].rows()));
  }
  if (in.decode && in.has_state && dev_.is_cuda() && graphs_ && graphs_enabled() && embed_->graphable(in))
    return decode_with_graph(in, g, out);
  std::unique_ptr<Arena> ws;
  MK_RETURN_IF_ERROR(arenas_.get(dev_, workspace_bytes(*be, in, g), &ws));
  MK_RETURN_IF_ERROR(Tensor::create(dev_, DType::F32, head_->output_shape(final_geometry(g), in), out));
  RunCtx c{*be, *ws, in, true};
  const Status st = launch(c, g, out->ptr<float>());
  arenas_.put(std::move(ws));  // stream-ordered: the next call may reuse it at once
  MK_RETURN_IF_ERROR(st);
  return be->finish((family_ + " forward").c_str());
}

Status Plan::decode_with_graph(const CallInputs& in, const Geometry& g, Tensor* out) const {
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(dev_, &be));
  std::vector<uintptr_t> key{static_cast<uintptr_t>(g.B), in.slots.storage ? 1u : 0u, in.modality.storage ? 1u : 0u};
  for (const Tensor& t : in.state.parts) key.push_back(reinterpret_cast<uintptr_t>(t.raw()));
  // Edits: what each does, the sizes of its index tensors (rows, editor: made per call, so the graph
  // keeps its own copies, as of the input) and the buffers of its weights (resident: read where they are).
  const auto sizes = [&](const Tensor& t) {
    key.push_back(t.storage ? static_cast<uintptr_t>(t.numel()) : ~uintptr_t{0});
  };
  for (const Edit& e : in.edits) {
    for (uintptr_t v : {static_cast<uintptr_t>(e.after), static_cast<uintptr_t>(e.op), static_cast<uintptr_t>(e.formula),
                        static_cast<uintptr_t>(e.act)})
      key.push_back(v);
    sizes(e.rows), sizes(e.editor);
    for (const Tensor* t : {&e.values, &e.R, &e.W, &e.b}) {
      key.push_back(t->storage ? reinterpret_cast<uintptr_t>(t->raw()) : 0);
      key.push_back(static_cast<uintptr_t>(t->dtype));
      for (int64_t d : t->shape) key.push_back(static_cast<uintptr_t>(d));
      key.push_back(~uintptr_t{0});  // ends the shape
    }
  }
  std::lock_guard<std::mutex> lock(graph_mu_);
  std::shared_ptr<Graph> gr;
  for (size_t i = 0; i < graphs_cache_.size(); ++i)
    if (graphs_cache_[i]->key == key) {
      gr = graphs_cache_[i];
      graphs_cache_.erase(graphs_cache_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  const bool fresh = !gr;
  if (fresh) {
    gr = std::make_shared<Graph>();
    gr->key = key;
    gr->in = in;
    auto like = [&](const Tensor& t, Tensor* copy) { return Tensor::create(dev_, t.dtype, t.shape, copy); };
    MK_RETURN_IF_ERROR(like(in.input, &gr->in.input));
    if (in.modality.storage) MK_RETURN_IF_ERROR(like(in.modality, &gr->in.modality));
    if (in.slots.storage) MK_RETURN_IF_ERROR(like(in.slots, &gr->in.slots));
    for (size_t i = 0; i < in.edits.size(); ++i) {
      MK_RETURN_IF_ERROR(like(in.edits[i].rows, &gr->in.edits[i].rows));
      if (in.edits[i].editor.storage) MK_RETURN_IF_ERROR(like(in.edits[i].editor, &gr->in.edits[i].editor));
    }
    MK_RETURN_IF_ERROR(Tensor::create(dev_, DType::F32, head_->output_shape(final_geometry(g), in), &gr->out));
    gr->ws.reset(new Arena(Arena::counter()));
    MK_RETURN_IF_ERROR(Arena::create(dev_, workspace_bytes(*be, gr->in, g), gr->ws.get()));
  }
  // the step's inputs go into the buffers the graph reads
  MK_RETURN_IF_ERROR(be->copy(gr->in.input.raw(), in.input.raw(), in.input.nbytes()));
  if (in.modality.storage) MK_RETURN_IF_ERROR(be->copy(gr->in.modality.raw(), in.modality.raw(), in.modality.nbytes()));
  if (in.slots.storage) MK_RETURN_IF_ERROR(be->copy(gr->in.slots.raw(), in.slots.raw(), in.slots.nbytes()));
  for (size_t i = 0; i < in.edits.size(); ++i) {
    const Edit &e = in.edits[i], &ge = gr->in.edits[i];
    MK_RETURN_IF_ERROR(be->copy(ge.rows.raw(), e.rows.raw(), e.rows.nbytes()));
    if (e.editor.storage) MK_RETURN_IF_ERROR(be->copy(ge.editor.raw(), e.editor.raw(), e.editor.nbytes()));
  }
  if (fresh) {
    MK_RETURN_IF_ERROR(gpu::capture_begin(dev_.index));
    RunCtx c{*be, *gr->ws, gr->in, false};
    const Status s = launch(c, g, gr->out.ptr<float>());
    const Status e = gpu::capture_end(dev_.index, &gr->exec);
    MK_RETURN_IF_ERROR(s);
    MK_RETURN_IF_ERROR(e);
  }
  MK_RETURN_IF_ERROR(gpu::graph_launch(dev_.index, gr->exec));
  // the caller owns its output; the graph's buffer is overwritten by the next replay
  MK_RETURN_IF_ERROR(Tensor::create(dev_, DType::F32, gr->out.shape, out));
  MK_RETURN_IF_ERROR(be->copy(out->raw(), gr->out.raw(), out->nbytes()));
  graphs_cache_.push_back(gr);
  if (graphs_cache_.size() > kMaxGraphs) graphs_cache_.erase(graphs_cache_.begin());
  return be->finish((family_ + " decode step (CUDA graph)").c_str());
}

}  // namespace mk
