// Editor sets for tests (random weights, R with orthonormal rows by Gram-Schmidt in float64) and the
// float64 edit of one hidden vector, for references that apply editors at block outputs.
import type { Editor, EditorActivation, EditorFormula, EditorPositions, EditorSet, EditorSite } from '../../lib';
import { uniform } from './random';
import { reftRef } from './reft-ref';

/** Rows of a [r, C] matrix orthonormalized by classical Gram-Schmidt in float64 (the unique Q with diag(U) > 0). */
export function gramSchmidtRows(A: ArrayLike<number>, r: number, C: number): Float64Array {
  const q = new Float64Array(r * C);
  for (let j = 0; j < r; ++j) {
    const v = Float64Array.from({ length: C }, (_, c) => A[j * C + c]);
    for (let i = 0; i < j; ++i) {
      let dot = 0;
      for (let c = 0; c < C; ++c) dot += q[i * C + c] * A[j * C + c];
      for (let c = 0; c < C; ++c) v[c] -= dot * q[i * C + c];
    }
    const n = Math.hypot(...v);
    for (let c = 0; c < C; ++c) q[j * C + c] = v[c] / n;
  }
  return q;
}

export interface EditorShape {
  name: string;
  site?: EditorSite;
  layer: number;
  positions: EditorPositions;
  rank: number;
  formula?: EditorFormula;
  activation?: EditorActivation;
  decode?: boolean;
}

/** A random editor of width C: R orthonormal, W and b uniform in ±0.5 (never zero). */
export function randomEditor(s: EditorShape, C: number): Editor {
  return {
    site: 'block', formula: 'pyreft', activation: 'identity', decode: false, ...s, hidden: C,
    R: Float32Array.from(gramSchmidtRows(uniform(s.rank * C, -1, 1), s.rank, C)),
    W: uniform(s.rank * C, -0.5, 0.5), b: uniform(s.rank, -0.5, 0.5),
  };
}

export function editorSet(C: number, editors: Editor[], modelType?: string): EditorSet {
  return { model: { hiddenSize: C, ...(modelType && { modelType }) }, source: 'test', editors };
}

/** h ← h + Rᵀ·(act(Wh + b) − Rh) (pyreft) or h + Rᵀ·act(Wh + b − Rh) (MRT), in float64, in place (reftRef on one row). */
export function editVector(h: Float64Array, e: Editor): void {
  h.set(reftRef(h, 1, e.hidden, [0], [0], e.R, e.W, e.b, 1, e.rank, e.formula, e.activation));
}
