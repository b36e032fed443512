// Residual-stream edits given to a call as data and applied by the native plan at the edit point
// after a block, in the same pass (csrc/plan/edit.h): activation addition (a steering vector) and
// representation editors (MRT / LoReFT, the kernel of ops.reft).
import { MambakitError } from '../errors';
import { NativeCall, NativeEdit, NativeModel, ReftActivation, ReftFormula, call } from '../native';
import { Device, Tensor } from '../tensor';

interface EditAt {
  /** Block index (0-based, in the plan's block order): the edit applies to the stream after that block. */
  after: number;
  /** Stream rows to edit, distinct: b·T + t for position t of sequence b in this call (images: b·H·W + y·W + x). */
  rows: readonly number[] | Int32Array;
}

/** stream[row] += add. */
export interface AddEdit extends EditAt {
  /** f32 [D] (one vector for every row) or [rows.length, D], on the model's device. */
  add: Tensor;
}

/** stream[row] += R_eᵀ d(W_e h + b_e, R_e h) with e = editor[i] and h = stream[row] (see ops.reft). */
export interface ReftEdit extends EditAt {
  reft: {
    /** The editor of each row, in [0, E). */
    editor: readonly number[] | Int32Array;
    /** [E, r, D], both f32 or both bf16, on the model's device. */
    R: Tensor;
    W: Tensor;
    /** f32 [E, r]. */
    b: Tensor;
    formula?: ReftFormula;
    activation?: ReftActivation;
  };
}

export type ResidualEdit = AddEdit | ReftEdit;

/** The edits as native handles, plus the index tensors made for them (the caller disposes them after the call). */
export function editHandles(edits: readonly ResidualEdit[], device: Device): { edits: NativeEdit[]; owned: Tensor[] } {
  const owned: Tensor[] = [];
  const ints = (v: readonly number[] | Int32Array): Tensor => {
    const t = Tensor.from(Int32Array.from(v), [v.length], { device });
    owned.push(t);
    return t;
  };
  try {
    const out = edits.map((e, i): NativeEdit => {
      if ('reft' in e) {
        const { editor, R, W, b, formula, activation } = e.reft;
        if (![R, W, b].every((t) => t instanceof Tensor)) throw new MambakitError('E_ARG', `edits[${i}].reft: R, W and b must be Tensors`);
        return {
          op: 'reft', after: e.after, rows: ints(e.rows).handle, editor: ints(editor).handle, R: R.handle, W: W.handle, b: b.handle,
          formula: formula ?? 'pyreft', activation: activation ?? 'identity',
        };
      }
      if (!(e.add instanceof Tensor)) throw new MambakitError('E_ARG', `edits[${i}].add must be a Tensor`);
      return { op: 'add', after: e.after, rows: ints(e.rows).handle, values: e.add.handle };
    });
    return { edits: out, owned };
  } catch (err) {
    owned.forEach((t) => t.dispose());
    throw err;
  }
}

/** One native call with `all` the call's edits (none: the plain call); the index tensors made for them are freed after. */
export async function forwardWithEdits(native: NativeModel, c: NativeCall, all: readonly ResidualEdit[], device: Device): Promise<Tensor> {
  if (!all.length) return Tensor.fromHandle(await call(() => native.forward(c)));
  const { edits, owned } = editHandles(all, device);
  try {
    return Tensor.fromHandle(await call(() => native.forward({ ...c, edits })));
  } finally {
    owned.forEach((t) => t.dispose());
  }
}
