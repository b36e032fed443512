// Float64 reference of the dense Mamba-1 forward (FORMATS.md §1), token by token, written from the
// equations: h = h + out_proj(y); x, z = split(in_proj(rmsnorm(h))); x = silu(conv(x));
// dt, B, C = split(x_proj(x)); dt = softplus(dt_proj(dt) + b); s = exp(dt·A)·s + dt·B·x; y = (C·s + D·x)·silu(z).
import type { MambaShape, Weights } from './mamba-ckpt';

const silu = (x: number): number => x / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

function matvec(W: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number, bias?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; ++r) {
    let s = bias ? bias[r] : 0;
    for (let c = 0; c < cols; ++c) s += W[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; ++i) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => x[i] * inv * w[i]);
}

/** Logits [T, V] for one sequence (weights as stored; pass the rounded values for bf16 models). */
export function mambaRef(s: MambaShape, w: Weights, tokens: number[], eps = 1e-5): Float64Array[] {
  const { D, L, N, K } = s;
  const V = w['backbone.embeddings.weight'].length / D;
  const E = s.expand * D;
  const R = s.R === undefined || s.R === 'auto' ? Math.ceil(D / 16) : s.R;
  const conv = Array.from({ length: L }, () => Array.from({ length: K - 1 }, () => new Float64Array(E)));
  const ssm = Array.from({ length: L }, () => new Float64Array(E * N));
  const out: Float64Array[] = [];
  for (const tok of tokens) {
    let h = Float64Array.from(w['backbone.embeddings.weight'].subarray(tok * D, (tok + 1) * D));
    for (let l = 0; l < L; ++l) {
      const p = `backbone.layers.${l}.mixer.`;
      const xz = matvec(w[`${p}in_proj.weight`], rmsnorm(h, w[`backbone.layers.${l}.norm.weight`], eps), 2 * E, D, w[`${p}in_proj.bias`]);
      const cw = w[`${p}conv1d.weight`], cb = w[`${p}conv1d.bias`];
      const x = new Float64Array(E);
      for (let e = 0; e < E; ++e) {
        let a = cb ? cb[e] : 0;
        for (let j = 0; j < K - 1; ++j) a += cw[e * K + j] * conv[l][j][e];
        a += cw[e * K + K - 1] * xz[e];
        x[e] = silu(a);
      }
      conv[l].push(Float64Array.from(xz.subarray(0, E)));
      conv[l].shift();
      const xdbl = matvec(w[`${p}x_proj.weight`], x, R + 2 * N, E);
      const dt = matvec(w[`${p}dt_proj.weight`], xdbl.subarray(0, R), E, R, w[`${p}dt_proj.bias`]);
      const y = new Float64Array(E);
      for (let e = 0; e < E; ++e) {
        const d = softplus(dt[e]);
        let acc = 0;
        for (let n = 0; n < N; ++n) {
          const A = -Math.exp(w[`${p}A_log`][e * N + n]);
          const st = Math.exp(d * A) * ssm[l][e * N + n] + d * xdbl[R + n] * x[e];
          ssm[l][e * N + n] = st;
          acc += xdbl[R + N + n] * st;
        }
        y[e] = (acc + w[`${p}D`][e] * x[e]) * silu(xz[E + e]);
      }
      const o = matvec(w[`${p}out_proj.weight`], y, D, E, w[`${p}out_proj.bias`]);
      h = h.map((v, i) => v + o[i]);
    }
    const hn = rmsnorm(h, w['backbone.norm_f.weight'], eps);
    out.push(matvec(w['lm_head.weight'] ?? w['backbone.embeddings.weight'], hn, V, D));
  }
  return out;
}
