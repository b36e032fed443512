// Float64 reference of the Mamba-family forward, token by token, written from the equations.
// Mamba block (FORMATS.md §1): h = h + out_proj(y); x, z = split(in_proj(rmsnorm(h))); x = silu(conv(x));
// dt, B, C = split(x_proj(x)); dt = softplus(dt_proj(dt) + b); s = exp(dt·A)·s + dt·B·x; y = (C·s + D·x)·silu(z).
// Mixture-of-Mamba (§3): a per-modality projection uses W[m] (and b[m]) of the token's modality m.
// MoE block (§2): h = h + Σ_k g_k · expert_k(rmsnorm(h)) over the top-k of softmax(router · x).
import type { MambaShape, Weights } from './mamba-ckpt';
import { actRef } from './sparse-ref';

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

// Slice m of a weight stacked [M, ...] (per modality), or the weight itself when it is shared.
function pick(s: MambaShape, proj: string, w: Float32Array | undefined, m: number): Float32Array | undefined {
  if (!w || !s.mom || !s.mom.specific.includes(proj as 'in_proj')) return w;
  const n = w.length / s.mom.M;
  return w.subarray(m * n, (m + 1) * n);
}

function moeRef(s: MambaShape, w: Weights, l: number, x: Float64Array): Float64Array {
  const { experts: Ne, topK, F, act, renorm } = s.moe!;
  const D = s.D, p = `backbone.layers.${l}.moe.`;
  const logits = matvec(w[`${p}router.weight`], x, Ne, D);
  const mx = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - mx));
  const sum = e.reduce((a, b) => a + b, 0);
  const order = Array.from({ length: Ne }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
  const chosen = order.reduce((a, i) => a + e[i] / sum, 0);
  const out = new Float64Array(D);
  const F1 = act === 'swiglu' ? 2 * F : F;
  for (const i of order) {
    const g = e[i] / sum / (renorm ? chosen : 1);
    const hIn = matvec(w[`${p}experts.w_in`].subarray(i * F1 * D, (i + 1) * F1 * D), x, F1, D);
    const a = act === 'swiglu' ? Float64Array.from({ length: F }, (_, f) => silu(hIn[f]) * hIn[F + f]) : hIn.map(actRef[act]);
    const y = matvec(w[`${p}experts.w_out`].subarray(i * D * F, (i + 1) * D * F), a, D, F);
    for (let d = 0; d < D; ++d) out[d] += g * y[d];
  }
  return out;
}

/**
 * Logits [T, V] for one sequence (weights as stored; pass the rounded values for bf16 models). A token is an
 * id or its input embedding [D] (a VLM's image tokens). modalities: one id per token (Mixture-of-Mamba).
 * after(l, t, h): called with the residual stream h of token t after block l (may change it in place:
 * residual-stream edits).
 */
export function mambaRef(s: MambaShape, w: Weights, tokens: readonly (number | ArrayLike<number>)[], eps = 1e-5, modalities?: number[],
  after?: (l: number, t: number, h: Float64Array) => void): Float64Array[] {
  const { D, L, N, K } = s;
  const V = w['backbone.embeddings.weight'].length / D;
  const E = s.expand * D;
  const R = s.R === undefined || s.R === 'auto' ? Math.ceil(D / 16) : s.R;
  const conv = Array.from({ length: L }, () => Array.from({ length: K - 1 }, () => new Float64Array(E)));
  const ssm = Array.from({ length: L }, () => new Float64Array(E * N));
  const out: Float64Array[] = [];
  for (const [t, tok] of tokens.entries()) {
    const mod = modalities?.[t] ?? 0;
    const W = (name: string): Float32Array => pick(s, name.split('.')[0], w[`${p}${name}`], mod)!;
    const Wopt = (name: string): Float32Array | undefined => pick(s, name.split('.')[0], w[`${p}${name}`], mod);
    let p = '';
    let h = Float64Array.from(typeof tok === 'number' ? w['backbone.embeddings.weight'].subarray(tok * D, (tok + 1) * D) : tok);
    for (let l = 0; l < L; ++l) {
      if (s.moe?.layerTypes[l] === 'moe') {
        const o = moeRef(s, w, l, rmsnorm(h, w[`backbone.layers.${l}.norm.weight`], eps));
        h = h.map((v, i) => v + o[i]);
        after?.(l, t, h);
        continue;
      }
      p = `backbone.layers.${l}.mixer.`;
      const xz = matvec(W('in_proj.weight'), rmsnorm(h, w[`backbone.layers.${l}.norm.weight`], eps), 2 * E, D, Wopt('in_proj.bias'));
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
      const xdbl = matvec(W('x_proj.weight'), x, R + 2 * N, E);
      const dt = matvec(W('dt_proj.weight'), xdbl.subarray(0, R), E, R, W('dt_proj.bias'));
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
      const o = matvec(W('out_proj.weight'), y, D, E, Wopt('out_proj.bias'));
      h = h.map((v, i) => v + o[i]);
      after?.(l, t, h);
    }
    const hn = rmsnorm(h, w['backbone.norm_f.weight'], eps);
    out.push(matvec(w['lm_head.weight'] ?? w['backbone.embeddings.weight'], hn, V, D));
  }
  return out;
}
