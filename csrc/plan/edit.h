// Edits of the residual stream at the edit point after a block, given to a call as data and applied
// in the same native pass (captured into a decode step's CUDA graph like every other kernel): no
// callback to JS in the hot path. An edit names its rows of the stream, an op and its weights.
//
// Ops: ADD (activation addition / a steering vector: stream[row] += v). The representation editors
// of MRT (low-rank edits of h, issue "MRT") are the next op kinds; they read the stream's value
// (x + pending) and write their delta the same way.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/tensor.h"

namespace mk {

enum class EditOp : int { ADD = 0 };

struct Edit {
  int64_t after = -1;  // edits the stream after blocks[after]
  EditOp op = EditOp::ADD;
  Tensor rows;         // i32 [n] on the model's device: stream rows (b·T + t for tokens), distinct
  Tensor values;       // f32 [C] (one vector for every row) or [n, C]
};

struct Residual;

// Shapes, dtypes and device of an edit at a stream of `rows` rows and C channels (JS thread).
Status check_edit(const Edit& e, int64_t n_blocks, Device dev, int64_t C);
// Row indices in [0, rows) and distinct (a host read-back; on the executor, before a launch).
Status check_edit_rows(Backend& be, const Edit& e, int64_t rows);
// Applies the edit to the stream (its pending part when there is one).
Status apply_edit(Backend& be, const Edit& e, Residual& r);

}  // namespace mk
