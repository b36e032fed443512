// Residual-stream edits given to a call as data and applied by the native plan at the edit point
// after a block, in the same pass (csrc/plan/edit.h). Today's op is activation addition (a steering
// vector); the representation editors of MRT are the next kinds.
import { MambakitError } from '../errors';
import type { NativeEdit } from '../native';
import { Device, Tensor } from '../tensor';

/** stream[row] += add at the edit point after block `after`. */
export interface ResidualEdit {
  /** Block index (0-based, in the plan's block order): the edit applies to the stream after that block. */
  after: number;
  /** Stream rows to edit: b·T + t for position t of sequence b in this call (distinct). */
  rows: readonly number[] | Int32Array;
  /** f32 [D] (one vector for every row) or [rows.length, D], on the model's device. */
  add: Tensor;
}

/** The edits as native handles, plus the row tensors made for them (the caller disposes them after the call). */
export function editHandles(edits: readonly ResidualEdit[], device: Device): { edits: NativeEdit[]; owned: Tensor[] } {
  const owned: Tensor[] = [];
  try {
    const out = edits.map((e, i): NativeEdit => {
      if (!(e.add instanceof Tensor)) throw new MambakitError('E_ARG', `edits[${i}].add must be a Tensor`);
      const rows = Tensor.from(Int32Array.from(e.rows), [e.rows.length], { device });
      owned.push(rows);
      return { after: e.after, op: 'add', rows: rows.handle, values: e.add.handle };
    });
    return { edits: out, owned };
  } catch (err) {
    owned.forEach((t) => t.dispose());
    throw err;
  }
}
