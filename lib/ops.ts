// Eager ops: each queues one native op (checked natively, run off the JS thread) and resolves with
// its outputs once it has run. Errors reject with a MambakitError naming the op and the shapes.
import { DType, dtypeId } from './dtype';
import { addon, call } from './native';
import type { ReftActivation, ReftFormula } from './native';
import { Tensor } from './tensor';

async function run(name: string, inputs: (Tensor | undefined)[], attrs: Record<string, number> = {}): Promise<Tensor[]> {
  const handles = inputs.map((t) => (t === undefined ? null : t.handle));
  const out = await call(() => addon.runOp(name, handles, attrs));
  return out.map((h) => Tensor.fromHandle(h));
}

async function one(name: string, inputs: (Tensor | undefined)[], attrs?: Record<string, number>): Promise<Tensor> {
  const [y] = await run(name, inputs, attrs);
  return y;
}

/**
 * y[..., N] = x[..., K] · w[N, K]ᵀ (+ bias[N]). x f32; w f32, f16 or bf16. With bf16 w, x is rounded to bf16
 * where the hardware multiplies bf16 pairs (CUDA tensor cores; CPUs with AVX512-BF16: info().bf16Gemm).
 */
export function gemm(x: Tensor, w: Tensor, bias?: Tensor): Promise<Tensor> {
  return one('gemm', [x, w, bias]);
}

/** a + b; b's shape equals a's or a suffix of it (broadcast over leading dims). */
export function add(a: Tensor, b: Tensor): Promise<Tensor> {
  return one('add', [a, b]);
}

/** a ⊙ b; b's shape equals a's or a suffix of it. */
export function mul(a: Tensor, b: Tensor): Promise<Tensor> {
  return one('mul', [a, b]);
}

/** x · sigmoid(x) */
export function silu(x: Tensor): Promise<Tensor> {
  return one('silu', [x]);
}

/** log(1 + eˣ) (x for x > 20) */
export function softplus(x: Tensor): Promise<Tensor> {
  return one('softplus', [x]);
}

/** Exact GELU: ½x(1 + erf(x/√2)) */
export function gelu(x: Tensor): Promise<Tensor> {
  return one('gelu', [x]);
}

/** x / √(mean(x²) + eps) ⊙ weight, over the last dim. */
export function rmsnorm(x: Tensor, weight: Tensor, opts: { eps?: number } = {}): Promise<Tensor> {
  return one('rmsnorm', [x, weight, undefined], { eps: opts.eps ?? 1e-5 });
}

/** Fused pre-norm residual step: sum = x + residual; out = rmsnorm(sum) ⊙ weight. */
export async function rmsnormResidual(
  x: Tensor, residual: Tensor, weight: Tensor, opts: { eps?: number } = {},
): Promise<{ out: Tensor; sum: Tensor }> {
  const [out, sum] = await run('rmsnorm', [x, weight, residual], { eps: opts.eps ?? 1e-5 });
  return { out, sum };
}

/** (x − mean) / √(var + eps) ⊙ weight (+ bias), over the last dim. */
export function layernorm(x: Tensor, weight: Tensor, bias?: Tensor, opts: { eps?: number } = {}): Promise<Tensor> {
  return one('layernorm', [x, weight, bias], { eps: opts.eps ?? 1e-5 });
}

/** Rows of `table` [V, D] (f32/f16/bf16) for i32 `ids` → f32 [...ids.shape, D]. */
export function embedding(ids: Tensor, table: Tensor): Promise<Tensor> {
  return one('embedding', [ids, table]);
}

/** Softmax over the last dim. */
export function softmax(x: Tensor): Promise<Tensor> {
  return one('softmax', [x]);
}

/** Index of the maximum over the last dim (first one on ties; a NaN wins) → i32. */
export function argmax(x: Tensor): Promise<Tensor> {
  return one('argmax', [x]);
}

/** Converts between float dtypes (round to nearest even). */
export function cast(x: Tensor, dtype: Extract<DType, 'f32' | 'f16' | 'bf16'>): Promise<Tensor> {
  return one('cast', [x], { dtype: dtypeId(dtype) });
}

/**
 * Causal depthwise conv1d over time (+ SiLU unless `silu: false`): x [B, T, E], w [E, K] (or [E, 1, K]),
 * optional bias [E] and initial window state [B, K-1, E] (oldest first). Returns y and the final window.
 */
export async function causalConv1d(
  x: Tensor, w: Tensor, opts: { bias?: Tensor; state?: Tensor; silu?: boolean } = {},
): Promise<{ y: Tensor; state: Tensor }> {
  const [y, state] = await run('causal_conv1d', [x, w, opts.bias, opts.state], { silu: opts.silu === false ? 0 : 1 });
  return { y, state };
}

/**
 * Fused selective scan: dt' = softplus(dt + dtBias); s = exp(dt'·A)·s + dt'·B·u; y = (C·s + D·u)·silu(z).
 * u, dt, z [B, T, E]; A = −exp(A_log) transposed to [N, E]; B, C [B, T, N]; D, dtBias [E];
 * state [B, N, E] (f32, zeros if absent). Returns y and the final state.
 */
export async function selectiveScan(
  u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
  opts: { D?: Tensor; z?: Tensor; dtBias?: Tensor; state?: Tensor } = {},
): Promise<{ y: Tensor; state: Tensor }> {
  const [y, state] = await run('selective_scan', [u, dt, A, B, C, opts.D, opts.z, opts.dtBias, opts.state]);
  return { y, state };
}

// (kept with the sample op so concurrent edits to the imports above do not conflict)
import { MambakitError } from './errors';

/** Filters for {@link sample}; each defaults to "off". */
export interface SampleOptions {
  /** 0 = greedy (argmax); default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens with cumulative probability ≥ topP (1 = off). */
  topP?: number;
  /** Drop tokens with probability < minP · p_max (0 = off). */
  minP?: number;
  /** CTRL penalty for tokens in `prev`: positive logits divided, negative multiplied (1 = off). */
  repetitionPenalty?: number;
}

/**
 * Draws one token per row of logits f32 [B, V]. Order: repetition penalty → temperature → top-k →
 * top-p → min-p → renormalize → inverse-CDF draw (ties in the sort go to the lower id). `prev` i32
 * [B, P] lists earlier token ids per row (-1 = padding). The draw for row b is keyed by (seed, step, b),
 * so the same seed and step give the same ids; with `keys` i32 [B, 2] row b uses its own (seed, step)
 * exactly as a one-row call would (a batch of requests sampled together). Returns ids i32 [B] and logprobs f32 [B] (log of the
 * chosen token's probability after filtering; for greedy, the log-softmax at temperature 1).
 */
export async function sample(
  logits: Tensor, opts: SampleOptions & { prev?: Tensor; seed?: number; step?: number; keys?: Tensor } = {},
): Promise<{ ids: Tensor; logprobs: Tensor }> {
  const bad = (name: string, v: number, rule: string): never => {
    throw new MambakitError('E_ARG', `sample: ${name} must be ${rule}, got ${v}`);
  };
  const num = (name: string, v: unknown, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number') throw new MambakitError('E_ARG', `sample: ${name} must be a number, got ${typeof v}`);
    return v;
  };
  const temperature = num('temperature', opts.temperature, 1);
  const topK = num('topK', opts.topK, 0);
  const topP = num('topP', opts.topP, 1);
  const minP = num('minP', opts.minP, 0);
  const repetitionPenalty = num('repetitionPenalty', opts.repetitionPenalty, 1);
  const seed = num('seed', opts.seed, 0);
  const step = num('step', opts.step, 0);
  if (!(Number.isFinite(temperature) && temperature >= 0)) bad('temperature', temperature, 'finite and >= 0');
  if (!(Number.isInteger(topK) && topK >= 0 && topK <= 2147483647)) bad('topK', topK, 'an integer >= 0');
  if (!(topP > 0 && topP <= 1)) bad('topP', topP, 'in (0, 1]');
  if (!(minP >= 0 && minP <= 1)) bad('minP', minP, 'in [0, 1]');
  if (!(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)) bad('repetitionPenalty', repetitionPenalty, 'finite and > 0');
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) bad('seed', seed, 'an integer in [0, 2^32)');
  if (!(Number.isInteger(step) && step >= 0 && step <= 0xffffffff)) bad('step', step, 'an integer in [0, 2^32)');
  const [ids, logprobs] = await run('sample', [logits, opts.prev, opts.keys], {
    temperature, top_k: topK, top_p: topP, min_p: minP, repetition_penalty: repetitionPenalty, seed, step,
  });
  return { ids, logprobs };
}

/** Zeroes x[:, slot] in place (x [L, S, ...]: a state pool); resolves when done. */
export async function zeroSlot(x: Tensor, slot: number): Promise<void> {
  await run('zero_slot', [x], { slot });
}

// ---- sparse models: routing and grouped GEMM (see csrc/cpu/sparse.h) ----

/** Activation fused into {@link groupedGemm}'s epilogue. */
export type Activation = 'none' | 'relu' | 'gelu' | 'silu';
const ACTIVATIONS: Record<Activation, number> = { none: 0, relu: 1, gelu: 2, silu: 3 };

/**
 * Router: p = softmax(logits [T, G]) per row; the k most likely experts (largest first, ties to the
 * lower index) with their probabilities (divided by the chosen k's sum when `renormalize`), and the
 * number of (token, choice) pairs per expert (load balance).
 */
export async function routerTopK(
  logits: Tensor, k: number, opts: { renormalize?: boolean } = {},
): Promise<{ ids: Tensor; weights: Tensor; counts: Tensor }> {
  const [ids, weights, counts] = await run('router_topk', [logits], { k, renorm: opts.renormalize ? 1 : 0 });
  return { ids, weights, counts };
}

/**
 * Counting sort of the (row, choice) pairs of `gid` i32 [rows, k] (or [rows]) by group id in [0, groups):
 * group g owns sorted positions [offsets[g], offsets[g+1]); src[p] is the input row at sorted position
 * p; pos[row, j] is the sorted position of pair (row, j). Stable on the CPU.
 */
export async function groupSort(gid: Tensor, groups: number): Promise<{ offsets: Tensor; src: Tensor; pos: Tensor }> {
  const [offsets, src, pos] = await run('group_sort', [gid], { groups });
  return { offsets, src, pos };
}

/**
 * Grouped GEMM: for each sorted position p of group g, y[dst?.[p] ?? p] = act(x[src?.[p] ?? p] · w[g]ᵀ + bias[g]).
 * x f32 [R, K]; w [G, N, K] f32/f16/bf16 (one weight per expert or modality); offsets i32 [G+1] from
 * {@link groupSort}; bias f32 [G, N]; dst a permutation (scatter back to token order). → y f32 [n, N].
 */
export function groupedGemm(
  x: Tensor, w: Tensor, offsets: Tensor,
  opts: { src?: Tensor; dst?: Tensor; bias?: Tensor; activation?: Activation } = {},
): Promise<Tensor> {
  const act = opts.activation ?? 'none';
  if (!(act in ACTIVATIONS)) throw new MambakitError('E_ARG', `groupedGemm: activation must be none, relu, gelu or silu, got '${act}'`);
  return one('grouped_gemm', [x, w, offsets, opts.src, opts.bias, opts.dst], { act: ACTIVATIONS[act] });
}

/** out[t] = Σ_j weights[t, j] · y[pos[t, j]] (weights default 1): the expert outputs back in token order. */
export function combine(y: Tensor, pos: Tensor, weights?: Tensor): Promise<Tensor> {
  return one('combine', [y, pos, weights]);
}

/**
 * Bidirectional multi-head attention (no causal mask): o[b, t, h] = softmax_j(scale·q·k[slot, j] + bias[b, j])·v.
 * q f32 [B, Tq, H, hd]; k, v [S, Tk, KVH, hd] in f32/bf16/f16 (a K/V cache: row b reads slot `slots[b]`, or b),
 * H a multiple of KVH (grouped K/V heads); bias f32 [B, Tk] added to the scores (−Infinity drops a key, e.g.
 * padding). scale defaults to 1/√hd. A query whose every key is dropped gets zeros.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: { bias?: Tensor; slots?: Tensor; scale?: number } = {}): Promise<Tensor> {
  return one('attention', [q, k, v, opts.bias, opts.slots], opts.scale === undefined ? {} : { scale: opts.scale });
}

/**
 * LLaDA's rotary embedding (half-split `rotate_half`, angle p·θ^(−2i/hd)) on q and k at positions pos0 + t; returns
 * the rotated q and K/V caches [B, pos0 + T, KVH, hd] holding the rotated k and v at those positions (zeros before).
 */
export async function ropeKv(
  q: Tensor, k: Tensor, v: Tensor, opts: { theta?: number; pos0?: number; kvDtype?: Extract<DType, 'f32' | 'f16' | 'bf16'> } = {},
): Promise<{ q: Tensor; kCache: Tensor; vCache: Tensor }> {
  const kvDtype = { f32: 0, f16: 1, bf16: 2 }[opts.kvDtype ?? 'f32'];
  const [qr, kc, vc] = await run('rope_kv', [q, k, v], { theta: opts.theta ?? 10000, pos0: opts.pos0 ?? 0, kv_dtype: kvDtype });
  return { q: qr, kCache: kc, vCache: vc };
}

/** The per-position decisions of one masked-diffusion step (csrc/core/denoise.h), in float64. */
export interface DenoisePickOptions {
  /**
   * Guidance: row r's unconditional logits are row r + uncondOffset of the same tensor (the guided batch
   * [cond; uncond]), mixed as un + (cfg + 1)·(cond − un).
   */
  uncondOffset?: number;
  cfg?: number;
  /** Gumbel-noise temperature (0: argmax). */
  temperature?: number;
  seed?: number;
  step?: number;
  /** Random remasking: the confidence is a uniform draw. */
  random?: boolean;
  /** Decide among columns [from, from + count) only (x0 counted from `from`): e.g. MMaDA's image codes. */
  columns?: readonly [number, number];
}

/**
 * For rows `rows` of logits f32 [..., V] (viewed as [R, V]): x0 = argmax of the (guided, Gumbel-noised) logits and its float64 softmax
 * probability (or a uniform draw with `random`). The draws are counter-based (seed, step, row, token), so a
 * row's decision does not depend on the other rows.
 */
export async function denoisePick(logits: Tensor, rows: Tensor, opts: DenoisePickOptions = {}): Promise<{ x0: Int32Array; conf: Float64Array }> {
  const [x0, conf] = await run('denoise_pick', [logits, rows], {
    uncond_offset: opts.uncondOffset ?? -1, cfg: opts.cfg ?? 0,
    ...(opts.columns ? { col0: opts.columns[0], cols: opts.columns[1] } : {}), temperature: opts.temperature ?? 0, seed: opts.seed ?? 0, step: opts.step ?? 0, random: opts.random ? 1 : 0,
  });
  try {
    const c = (await conf.data()) as Uint8Array;
    return { x0: (await x0.data()) as Int32Array, conf: new Float64Array(c.buffer, c.byteOffset, c.byteLength / 8) };
  } finally {
    x0.dispose();
    conf.dispose();
  }
}

// ---- representation editors (MRT / LoReFT, csrc/core/reft.h) ----

export type { ReftActivation, ReftFormula } from './native';
// ids of csrc/core/reft.h (ReftFormula, ReftAct)
const REFT_FORMULAS: Record<ReftFormula, number> = { pyreft: 0, mrt: 1 };
const REFT_ACTIVATIONS: Record<ReftActivation, number> = { identity: 0, relu: 1, gelu: 2, silu: 3, tanh: 4 };

/**
 * Representation editors applied to rows of h f32 [N, C] (or [..., C], rows = the leading dims flattened) → a new f32
 * tensor of h's shape: row rows[i] (i32 [n], distinct, in [0, N)) edited by editor e = editor[i] (i32 [n], in [0, E)),
 *   u = W_e h + b_e, v = R_e h,  h' = h + R_eᵀ (act(u) − v)  ('pyreft', the default)  or  h + R_eᵀ act(u − v)  ('mrt'),
 * every other row copied. R, W [E, r, C] (both f32 or both bf16; R's rows orthonormal for LoReFT), b f32 [E, r],
 * r ≤ min(C, 256); activation default 'identity'. For edit sites outside a model plan (a projector's output); inside one,
 * the same kernel runs at the edit points (NativeEdit op 'reft').
 */
export function reft(
  h: Tensor, rows: Tensor, editor: Tensor, R: Tensor, W: Tensor, b: Tensor,
  opts: { formula?: ReftFormula; activation?: ReftActivation } = {},
): Promise<Tensor> {
  const formula = opts.formula ?? 'pyreft', activation = opts.activation ?? 'identity';
  if (!Object.hasOwn(REFT_FORMULAS, formula)) throw new MambakitError('E_ARG', `reft: formula must be 'pyreft' or 'mrt', got '${formula}'`);
  if (!Object.hasOwn(REFT_ACTIVATIONS, activation))
    throw new MambakitError('E_ARG', `reft: activation must be 'identity', 'relu', 'gelu', 'silu' or 'tanh', got '${activation}'`);
  return one('reft', [h, rows, editor, R, W, b], { formula: REFT_FORMULAS[formula], activation: REFT_ACTIVATIONS[activation] });
}
