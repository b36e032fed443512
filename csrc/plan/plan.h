// A model plan: embed → an ordered list of blocks → head, over one Backend, with an edit point after
// every block. Every family is one of these (models/ builds them from a config and weights); what
// they share lives here: the residual stream, the call's workspace arena, recurrent state slots, the
// edits, and CUDA-graph capture/replay of decode steps.
//
// The residual stream is x [rows, C] plus, for pre-norm families, a pending block output: the
// stream's value is x + pending (the next block's norm, or the head's, adds them in one fused pass),
// so a Mamba block costs no separate residual add. Blocks that change the stream's geometry (a
// strided conv) write into `alt` and swap.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"
#include "plan/arena.h"
#include "plan/edit.h"

namespace mk {

// Rows of the stream are B·H·W positions of C channels: tokens are H = T, W = 1; images NHWC.
struct Geometry {
  int64_t B = 0, H = 0, W = 1, C = 0;
  int64_t rows() const { return B * H * W; }
  int64_t T() const { return H * W; }
};

struct Residual {
  float* x = nullptr;
  float* pending = nullptr;  // a block's output not yet added to x (when has_pending)
  float* alt = nullptr;      // a second stream buffer, for geometry-changing blocks
  bool has_pending = false;
  Geometry g;
};

// Recurrent state of S sequence slots: one f32 tensor [S, ...] per state part of each stateful block.
// (A plan without stateful blocks, e.g. all-MoE, has states with no parts.)
struct PlanState {
  std::vector<Tensor> parts;
  int64_t slots = 0;
  int64_t context = 0;  // positions per slot of attention K/V caches (0: the plan has none)
  bool disposed = false;
};

// Inputs of one call. input: token ids i32 [B, T] or embeddings f32 [B, T, D] (language), pixels
// f32 [B, H, W, C] (vision); which ones a plan takes is its embed's business.
struct CallInputs {
  Tensor input;
  Tensor modality;       // i32 [B, T] (Mixture-of-Mamba) or empty
  bool has_state = false;  // false: zero history, nothing kept
  PlanState state;        // shares the caller's storage: a disposed handle cannot free it mid-call
  Tensor slots;          // i32 [B] batch row -> state slot, or empty (slot b = row b)
  bool decode = false;   // one token per row, recurrent update (prefill otherwise)
  bool last_only = false;  // the head reads only the last position of each row
  // the head reads positions [head_from, head_from + head_count) of each row (count -1: all)
  int64_t head_from = 0, head_count = -1;
  // Attention plans: the input's tokens sit at positions [pos0, pos0 + T) of the state's K/V cache
  // and attend to the cached keys [0, keys) (0: pos0 + T); without a state pos0 = 0, keys = T.
  int64_t pos0 = 0, keys = 0;
  Tensor key_bias;       // f32 [B, keys] added to every score (-inf: padding), or empty
  std::vector<Edit> edits;
  int64_t key_count(int64_t T) const { return keys > 0 ? keys : pos0 + T; }
};

struct RunCtx;

// Turns the call's input into the stream (and any per-call data its blocks share, e.g. the modality
// sort). check() runs before anything is queued.
class Embed {
 public:
  virtual ~Embed() = default;
  virtual Status check(const CallInputs& in, Geometry* g) const = 0;
  // Buffers that live for the whole call (read by blocks); taken from the arena by run().
  virtual void call_buffers(RunCtx& c, Arena& a) const { (void)c, (void)a; }
  virtual Status run(RunCtx& c, Residual& r) const = 0;
  // Whether the call's inputs are token ids that a captured decode step may replay.
  virtual bool graphable(const CallInputs& in) const { (void)in; return false; }
};

class Block {
 public:
  virtual ~Block() = default;
  virtual const char* kind() const = 0;
  virtual Geometry output(const Geometry& in) const { return in; }
  // Takes the block's scratch from `a` (real buffers in run(); measured against Arena::counter()).
  virtual void scratch(Arena& a, const Geometry& in) const = 0;
  virtual Status run(RunCtx& c, Residual& r) const = 0;
  // Per-slot shapes of the block's recurrent state parts (none for most blocks); `context` is the
  // state's positions per slot, for K/V caches.
  virtual std::vector<Shape> state_shapes(int64_t context) const { (void)context; return {}; }
  // Whether run() leaves its output pending (pre-norm residual blocks) rather than in x.
  virtual bool uses_pending() const { return false; }
  int state_base = -1;  // index of the block's first part in PlanState::parts (set by the plan)
};

class Head {
 public:
  virtual ~Head() = default;
  // g: the stream the head reads (after every block).
  virtual Shape output_shape(const Geometry& g, const CallInputs& in) const = 0;
  virtual void scratch(Arena& a, const Geometry& g) const = 0;
  virtual Status run(RunCtx& c, Residual& r, float* out) const = 0;
};

// One call in flight: the backend, its workspace and what the embed left for the blocks.
struct RunCtx {
  Backend& be;
  Arena& ws;
  const CallInputs& in;
  bool verify;           // host read-backs allowed (false while capturing a graph)
  int32_t* flag = nullptr;  // a device int32 for bad-id flags
  // set by the embed for blocks that read it (Mixture-of-Mamba's modality sort of the rows)
  int32_t* group_offsets = nullptr;
  int32_t* group_src = nullptr;
  int32_t* group_pos = nullptr;
  // the state part `i` of this call (base of [S, ...]), null without state
  float* state(int64_t i) const { return in.has_state ? in.state.parts[i].ptr<float>() : nullptr; }
  int64_t slots_total() const { return in.has_state ? in.state.slots : 0; }
  const int32_t* slot_ids() const { return in.slots.storage ? in.slots.ptr<int32_t>() : nullptr; }
};

class Plan {
 public:
  Plan(std::string family, Device dev) : family_(std::move(family)), dev_(dev) {}
  ~Plan();

  // Building (models/): set the embed and the head, add blocks in order, then finalize().
  void set_embed(std::unique_ptr<Embed> e) { embed_ = std::move(e); }
  void set_head(std::unique_ptr<Head> h) { head_ = std::move(h); }
  void add_block(std::unique_ptr<Block> b) { blocks_.push_back(std::move(b)); }
  // Monitoring counters the plan's blocks accumulate into (MoE: tokens per expert), read by JS.
  void set_counters(Tensor t) { counters_ = std::move(t); }
  const Tensor& counters() const { return counters_; }
  // Whether decode steps may be captured into CUDA graphs (needs every block graph-safe).
  void set_graphs(bool on) { graphs_ = on; }
  // Whether calls may carry a state (a language model's prefill/step), even with no stateful block.
  void set_recurrent(bool on) { recurrent_ = on; }
  // Whether the plan has K/V caches: calls may place tokens at an offset (pos0, keys, key_bias) and
  // a state needs a context length.
  // max_positions bounds every position (the rotary table's length).
  void set_positional(int64_t max_positions) { positional_ = true, max_positions_ = max_positions; }
  bool positional() const { return positional_; }
  Status finalize();

  const std::string& family() const { return family_; }
  Device device() const { return dev_; }
  const std::vector<std::unique_ptr<Block>>& blocks() const { return blocks_; }
  int64_t state_parts() const { return state_parts_; }

  // A zeroed state for `slots` sequences (of up to `context` positions, for K/V caches).
  Status new_state(int64_t slots, int64_t context, PlanState* out) const;
  // Checks a state against the plan (E_SHAPE "not from this model", E_ARG disposed, E_DEVICE).
  Status check_state(const PlanState& s) const;
  // Zeroes one slot of every part (on the executor; queued on the device).
  Status zero_slot(const PlanState& s, int64_t slot) const;
  // On the JS thread, before queueing: inputs, state, slots and edit shapes (E_SHAPE / E_ARG / ...).
  Status check_call(const CallInputs& in) const;
  // On the executor: the whole forward; `out` is allocated here.
  Status forward(const CallInputs& in, Tensor* out) const;

 private:
  struct Graph;
  size_t workspace_bytes(Backend& be, const CallInputs& in, const Geometry& g) const;
  // The call's flag and stream buffers (x, pending, alt), sized for the largest geometry (launch and
  // workspace_bytes both take them through this).
  void stream_buffers(Arena& a, const Geometry& g, int32_t** flag, Residual* r) const;
  std::vector<Geometry> geometries(const Geometry& g) const;  // the stream after each block
  Geometry final_geometry(const Geometry& g) const;          // the stream the head reads
  // Queues embed → blocks (+ edits) → head on `be` with no allocation and no host sync unless
  // c.verify: a decode step can be captured.
  Status launch(RunCtx& c, const Geometry& g, float* out) const;
  Status decode_with_graph(const CallInputs& in, const Geometry& g, Tensor* out) const;

  std::string family_;
  Device dev_;
  std::unique_ptr<Embed> embed_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::unique_ptr<Head> head_;
  Tensor counters_;
  std::vector<Shape> state_shapes(int64_t context) const;  // per part, per slot
  int64_t state_parts_ = 0, max_positions_ = 0;
  bool graphs_ = false, pending_ = false, recurrent_ = false, positional_ = false;
  mutable ArenaCache arenas_;
  mutable std::mutex graph_mu_;
  mutable std::vector<std::shared_ptr<Graph>> graphs_cache_;  // most recently used last
};

}  // namespace mk
