// Orthonormal rows for an editor's R [r, d], in float64 on the host (r ≤ d, small).
//
// orthonormalRows follows what MRT does to its raw rotation weight every forward: a reduced QR of the
// [d, r] matrix Rᵀ and a sign fix that makes diag(R_qr) ≥ 0 (so the result is unique and continuous in
// the weight), then R = Qᵀ. Householder QR: stable for the nearly dependent columns a trained weight
// can have.

/** max |R Rᵀ − I| over the r×r entries. */
export function rowDeviation(R: Float32Array, r: number, d: number): number {
  let dev = 0;
  for (let i = 0; i < r; ++i)
    for (let j = i; j < r; ++j) {
      let s = 0;
      for (let c = 0; c < d; ++c) s += R[i * d + c] * R[j * d + c];
      dev = Math.max(dev, Math.abs(s - (i === j ? 1 : 0)));
    }
  return dev;
}

/** Q of Rᵀ = Q·U (Householder, reduced), columns signed so that diag(U) ≥ 0, returned as rows [r, d]. */
export function orthonormalRows(R: Float32Array, r: number, d: number): Float32Array {
  // A = Rᵀ, d×r, column-major in `a` (column j = row j of R)
  const a = Float64Array.from(R);
  const vs: Float64Array[] = [];
  for (let j = 0; j < r; ++j) {
    const col = a.subarray(j * d, (j + 1) * d);
    let norm = 0;
    for (let i = j; i < d; ++i) norm += col[i] * col[i];
    norm = Math.sqrt(norm);
    const v = new Float64Array(d);
    const alpha = col[j] >= 0 ? -norm : norm;  // reflect onto ∓|x|e_j, away from cancellation
    for (let i = j; i < d; ++i) v[i] = col[i];
    v[j] -= alpha;
    let vv = 0;
    for (let i = j; i < d; ++i) vv += v[i] * v[i];
    vs.push(v);
    if (vv === 0) continue;  // a zero column: nothing to reflect (the sign fix below still applies)
    for (let k = j; k < r; ++k) {  // apply H = I − 2vvᵀ/vᵀv to the remaining columns
      const ck = a.subarray(k * d, (k + 1) * d);
      let dot = 0;
      for (let i = j; i < d; ++i) dot += v[i] * ck[i];
      const f = (2 * dot) / vv;
      for (let i = j; i < d; ++i) ck[i] -= f * v[i];
    }
  }
  // Q's first r columns: H_0 … H_{r-1} applied to e_0 … e_{r-1}; the sign of diag(U) is a[j][j]'s
  const out = new Float32Array(r * d);
  const q = new Float64Array(d);
  for (let j = 0; j < r; ++j) {
    q.fill(0);
    q[j] = 1;
    for (let h = r - 1; h >= 0; --h) {
      const v = vs[h];
      let vv = 0, dot = 0;
      for (let i = h; i < d; ++i) { vv += v[i] * v[i]; dot += v[i] * q[i]; }
      if (vv === 0) continue;
      const f = (2 * dot) / vv;
      for (let i = h; i < d; ++i) q[i] -= f * v[i];
    }
    const sign = a[j * d + j] < 0 ? -1 : 1;
    for (let i = 0; i < d; ++i) out[j * d + i] = sign * q[i];
  }
  return out;
}
