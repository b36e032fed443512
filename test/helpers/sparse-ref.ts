// Float64 references for the sparse kernels (routing, grouped GEMM): plain definitions.
import { geluRef, siluRef, softmaxRef } from './ref';

export type ActName = 'none' | 'relu' | 'gelu' | 'silu';
export const actRef: Record<ActName, (v: number) => number> = {
  none: (v) => v, relu: (v) => Math.max(v, 0), gelu: geluRef, silu: siluRef,
};

/** softmax + top-k (largest first, ties to the lower index), optional renormalization. */
export function routerRef(logits: ArrayLike<number>, T: number, G: number, k: number, renorm: boolean) {
  const p = softmaxRef(logits, T, G);
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  const counts = new Int32Array(G);
  for (let t = 0; t < T; ++t) {
    // rank by the logit (exactly monotone with p), lower index first on ties
    const order = Array.from({ length: G }, (_, g) => g).sort((a, b) => logits[t * G + b] - logits[t * G + a] || a - b);
    let sum = 0;
    for (let j = 0; j < k; ++j) sum += p[t * G + order[j]];
    for (let j = 0; j < k; ++j) {
      ids[t * k + j] = order[j];
      weights[t * k + j] = p[t * G + order[j]] / (renorm ? sum : 1);
      counts[order[j]]++;
    }
  }
  return { ids, weights, counts };
}

/** y[t] = act(x[t] · W[g_t]ᵀ + b[g_t]) with W stacked [G, N, K], for rows of x in token order. */
export function perRowGemmRef(
  x: ArrayLike<number>, gid: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null,
  R: number, N: number, K: number, act: ActName = 'none',
): Float64Array {
  const y = new Float64Array(R * N);
  for (let r = 0; r < R; ++r) {
    const g = gid[r];
    for (let n = 0; n < N; ++n) {
      let s = bias ? bias[g * N + n] : 0;
      for (let k = 0; k < K; ++k) s += x[r * K + k] * w[(g * N + n) * K + k];
      y[r * N + n] = actRef[act](s);
    }
  }
  return y;
}
