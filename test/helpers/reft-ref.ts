// Representation editors (MRT / LoReFT, csrc/core/reft.h) in float64, plain loops: for row i,
// e = editor[i], h = x[rows[i]]:  u = W_e h + b_e,  v = R_e h,
//   pyreft: h' = h + R_eᵀ (act(u) − v)      mrt: h' = h + R_eᵀ act(u − v).
// For bf16 weights pass the bf16-rounded values (roundBf16 in ./ref).
import { rand, uniform } from './random';
import { geluRef, roundBf16, siluRef } from './ref';

export type ReftFormula = 'pyreft' | 'mrt';
export type ReftActivation = 'identity' | 'relu' | 'gelu' | 'silu' | 'tanh';

export const REFT_FORMULAS: readonly ReftFormula[] = ['pyreft', 'mrt'];
export const REFT_ACTIVATIONS: readonly ReftActivation[] = ['identity', 'relu', 'gelu', 'silu', 'tanh'];

const ACT: Record<ReftActivation, (z: number) => number> = {
  identity: (z) => z, relu: (z) => Math.max(z, 0), gelu: geluRef, silu: siluRef, tanh: Math.tanh,
};

/** h with rows[i] edited by editor[i] (h [N, C]; R, W [E, r, C]; b [E, r]); the other rows as they are. */
export function reftRef(
  h: Float64Array | Float32Array, N: number, C: number, rows: ArrayLike<number>, editor: ArrayLike<number>,
  R: Float32Array, W: Float32Array, b: Float32Array, E: number, r: number, formula: ReftFormula, activation: ReftActivation,
): Float64Array {
  if (h.length !== N * C || R.length !== E * r * C || W.length !== E * r * C || b.length !== E * r)
    throw new Error(`reftRef: sizes h ${h.length}, R ${R.length}, W ${W.length}, b ${b.length} for N=${N} C=${C} E=${E} r=${r}`);
  const act = ACT[activation];
  const out = Float64Array.from(h);
  for (let i = 0; i < rows.length; ++i) {
    const row = rows[i], e = editor[i];
    if (!(row >= 0 && row < N && e >= 0 && e < E)) throw new Error(`reftRef: row ${row} / editor ${e} out of range`);
    const x = h.subarray(row * C, (row + 1) * C);
    const d = new Float64Array(r);
    for (let j = 0; j < r; ++j) {
      const off = (e * r + j) * C;
      let u = b[e * r + j], v = 0;
      for (let c = 0; c < C; ++c) {
        u += W[off + c] * x[c];
        v += R[off + c] * x[c];
      }
      d[j] = formula === 'mrt' ? act(u - v) : act(u) - v;
    }
    for (let j = 0; j < r; ++j) {
      const off = (e * r + j) * C;
      for (let c = 0; c < C; ++c) out[row * C + c] += R[off + c] * d[j];
    }
  }
  return out;
}

/** r orthonormal rows of length C (r ≤ C) from random vectors by Gram-Schmidt (twice, for float64 orthogonality), as f32. */
export function orthonormalRows(r: number, C: number): Float32Array {
  if (r > C) throw new Error(`orthonormalRows: r=${r} > C=${C}`);
  const q: Float64Array[] = [];
  while (q.length < r) {
    const v = Float64Array.from({ length: C }, () => 2 * rand() - 1);
    for (let pass = 0; pass < 2; ++pass)
      for (const u of q) {
        let dot = 0;
        for (let c = 0; c < C; ++c) dot += u[c] * v[c];
        for (let c = 0; c < C; ++c) v[c] -= dot * u[c];
      }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    if (norm < 1e-6) continue; // (nearly) dependent: draw again
    q.push(v.map((x) => x / norm));
  }
  const out = new Float32Array(r * C);
  q.forEach((u, j) => out.set(u, j * C));
  return out;
}

/** n distinct rows of [0, N) in random order. */
export function randomRows(n: number, N: number): Int32Array {
  const all = Array.from({ length: N }, (_, i) => i);
  for (let i = N - 1; i > 0; --i) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return Int32Array.from(all.slice(0, n));
}

/**
 * E editors of rank r over C channels as the kernels see them (bf16: rounded): orthonormal R, W ~ U(−1, 1)/√C,
 * b ~ U(−0.5, 0.5).
 */
export function randomEditors(E: number, r: number, C: number, wdt: 'f32' | 'bf16'): { R: Float32Array; W: Float32Array; b: Float32Array } {
  const R = new Float32Array(E * r * C);
  for (let e = 0; e < E; ++e) R.set(orthonormalRows(r, C), e * r * C);
  const W = uniform(E * r * C, -1 / Math.sqrt(C), 1 / Math.sqrt(C));
  const round = (a: Float32Array): Float32Array => (wdt === 'bf16' ? a.map(roundBf16) : a);
  return { R: round(R), W: round(W), b: uniform(E * r, -0.5, 0.5) };
}
