// Edits of the residual stream at the edit point after a block, given to a call as data and applied
// in the same native pass (captured into a decode step's CUDA graph like every other kernel): no
// callback to JS in the hot path. An edit names its rows of the stream, an op and its weights.
//
// Ops: ADD (activation addition / a steering vector: stream[row] += v) and REFT (MRT / LoReFT
// representation editors, core/reft.h: stream[row] += R_eᵀ d(W_e h + b_e, R_e h) with h the stream's
// value x + pending). Both write their delta into the pending part when there is one.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/reft.h"
#include "core/tensor.h"

namespace mk {

enum class EditOp : int { ADD = 0, REFT = 1 };

struct Edit {
  int64_t after = -1;  // edits the stream after blocks[after]
  EditOp op = EditOp::ADD;
  Tensor rows;         // i32 [n] on the model's device: stream rows (b·T + t for tokens, b·H·W + y·W + x for images), distinct
  // ADD
  Tensor values;       // f32 [C] (one vector for every row) or [n, C]
  // REFT
  Tensor editor;       // i32 [n]: the editor of each row, in [0, E)
  Tensor R, W;         // [E, r, C], f32 or bf16 (one dtype); R's rows orthonormal for LoReFT
  Tensor b;            // f32 [E, r]
  ReftFormula formula = ReftFormula::PYREFT;
  ReftAct act = ReftAct::IDENTITY;
};

struct Residual;

// Shapes, dtypes and device of an edit at a stream of C channels (JS thread).
Status check_edit(const Edit& e, int64_t n_blocks, Device dev, int64_t C);
// Row indices in [0, rows) and distinct, editor indices in [0, E) (host read-backs; on the executor,
// before a launch).
Status check_edit_rows(Backend& be, const Edit& e, int64_t rows);
// Applies the edit to the stream (its pending part when there is one).
Status apply_edit(Backend& be, const Edit& e, Residual& r);

}  // namespace mk
