// Float64 reference of the LLaDA masked-diffusion LLM and of its samplers, written from the equations.
//
// Model: follows NVlabs/Fast-dLLM llada/model/modeling_llada.py (`LLaDALlamaBlock.forward`,
// `LLaDABlock.attention`, `RotaryEmbedding`, `RMSLayerNorm`, `LLaDAModel.forward`) for the published
// LLaDA-8B settings (block_type llama, RMS norms, no biases, SiLU-gated MLP, RoPE, no alibi):
//   x = wte[ids]; per block: h = rms(x)·attn_norm; q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ; RoPE on q and k;
//   att = softmax(q·kᵀ/√hd + keyMask)·v over ALL keys (bidirectional); x += att·Woᵀ;
//   h = rms(x)·ff_norm; x += (silu(h·ff_projᵀ) ⊙ h·up_projᵀ)·ff_outᵀ;
//   logits = rms(x)·ln_f·Wᵀ (W = wte when weight_tying, else transformer.ff_out), ×1/√D when scale_logits.
// Everything runs in float64 (weights are the stored float32 values, bf16-rounded for bf16 checkpoints).
//
// Samplers: `refGenerate` follows ML-GSAI/LLaDA generate.py (`generate`, `get_num_transfer_tokens`,
// `add_gumbel_noise`); `refGenerateFast` follows NVlabs/Fast-dLLM llada/generate.py (`generate`,
// `generate_with_prefix_cache`, `generate_with_dual_cache`, `get_transfer_index`; re-read at commit
// f6b35ec: both cached loops test for a finished block before each cached forward), extended to B rows
// and to left padding (the references are batch-1 and ignore the attention mask there).
//
// Deliberate choices and reference quirks (see also the notes at each function):
//  - RoPE angles are computed in float64; the references compute inv_freq, pos·inv_freq, sin and cos in
//    float32 (off by ~pos·2^-24 rad, ~2e-4 rad at position 4096).
//  - The cache holds post-RoPE K at absolute positions. Fast-dLLM stores pre-RoPE K and re-rotates all
//    keys at positions 0..key_len-1 on every call; since a key at cache index j always sits at position
//    j, the two are the same numbers.
//  - Key mask (attention_mask [B, T] of 1/0): a masked key gets -inf for every query, so pad query rows
//    attend to the valid keys only. MMaDA's mmu_generate builds attention_bias = mask⊗mask (finfo.min,
//    not -inf), which makes a pad query row attend uniformly to all keys instead; either way a pad row
//    never reaches a valid row's output (valid queries never read pad keys), so valid rows agree. A
//    query whose every key is masked gets a zero attention output here (the native kernel does the same).
//    Beware, none of the references does exactly this: the published GSAI-ML/LLaDA-8B modeling_llada.py
//    and Fast-dLLM's `attention` pass attn_mask=None to SDPA, so attention_mask is ignored and pads are
//    attended to (ML-GSAI/LLaDA issues #89, #90), although LLaDA's generate.py passes one; MMaDA's copy
//    (models/modeling_llada.py, after Gen-Verse/MMaDA PR #19) does pass the bias, but `LLaDAModel.forward`
//    builds it from get_causal_attention_bias when only attention_mask is given, so a padded forward
//    there is CAUSAL. This reference implements the intended semantics: bidirectional, pad keys dropped.
//  - topk ties are broken towards the lowest index (torch.topk's order among equal values is
//    unspecified); argmax ties pick the lowest index, as torch.argmax documents.

import { rand } from './random';

export interface LladaRefConfig {
  /** d_model */
  D: number;
  /** n_heads */
  H: number;
  /** n_kv_heads (effective) */
  KVH: number;
  /** n_layers */
  L: number;
  /** mlp_hidden_size */
  F: number;
  /** rows of wte / the head (embedding_size, or vocab_size when absent) */
  V: number;
  /** rope_theta */
  theta: number;
  /** rms_norm_eps */
  eps: number;
  /** weight_tying */
  tied: boolean;
  /** scale_logits */
  scaleLogits: boolean;
}

/** Tensor name (as in the Hugging Face checkpoints) → the values the native model gets. */
export type RefWeights = Record<string, Float32Array>;

/**
 * Per-layer K (post-RoPE, at absolute positions) and V, each [B, T, KVH·hd]: index t holds position t.
 */
export interface RefCache {
  B: number;
  T: number;
  k: Float64Array[];
  v: Float64Array[];
}

export interface RefForwardOptions {
  /** 1 = keep, 0 = drop, per key position: [B, keyLen] (keyLen = T, queryStart + T, or cache.T for replace). */
  attentionMask?: ArrayLike<number>;
  /** Cached K/V (from an earlier call's result). */
  cache?: RefCache;
  /**
   * Absolute position of ids[:, 0]. Without a cache it must be 0. With a cache and no replace: the
   * prefix length (default cache.T); the cache is truncated to it and the new K/V appended (Fast-dLLM's
   * prefix cache). With replace: where the block starts in the full cached K/V (required).
   */
  queryStart?: number;
  /** Dual cache: overwrite positions [queryStart, queryStart + T) of the cache with the new K/V. */
  replace?: boolean;
  /**
   * Called with the residual stream x [B·T, D] after each block of the native plan (block 2l: layer l's attention,
   * 2l + 1: its MLP); may change it in place (residual-stream edits).
   */
  after?: (block: number, x: Float64Array) => void;
}

export interface RefForwardResult {
  /** [B, T, V] for the T query tokens passed. */
  logits: Float64Array;
  /** K/V of all key positions of this call (the input cache is left untouched). */
  cache: RefCache;
}

export type RefForward = (ids: Int32Array, B: number, T: number, opts?: RefForwardOptions) => RefForwardResult;

export const PREFIX = 'model.transformer.';

/** The tensor names and shapes of a LLaDA checkpoint, in the order the published shards list them. */
export function lladaTensorShapes(c: LladaRefConfig): Record<string, number[]> {
  const hd = c.D / c.H;
  const s: Record<string, number[]> = {};
  s[`${PREFIX}wte.weight`] = [c.V, c.D];
  for (let i = 0; i < c.L; ++i) {
    const p = `${PREFIX}blocks.${i}.`;
    s[`${p}attn_norm.weight`] = [c.D];
    s[`${p}q_proj.weight`] = [c.D, c.D];
    s[`${p}k_proj.weight`] = [c.KVH * hd, c.D];
    s[`${p}v_proj.weight`] = [c.KVH * hd, c.D];
    s[`${p}attn_out.weight`] = [c.D, c.D];
    s[`${p}ff_norm.weight`] = [c.D];
    s[`${p}ff_proj.weight`] = [c.F, c.D];
    s[`${p}up_proj.weight`] = [c.F, c.D];
    s[`${p}ff_out.weight`] = [c.D, c.F];
  }
  s[`${PREFIX}ln_f.weight`] = [c.D];
  if (!c.tied) s[`${PREFIX}ff_out.weight`] = [c.V, c.D];
  return s;
}

function checkConfig(c: LladaRefConfig): void {
  const ints = [c.D, c.H, c.KVH, c.L, c.F, c.V];
  if (!ints.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`llada-ref: bad config ${JSON.stringify(c)}`);
  if (c.D % c.H !== 0) throw new Error(`llada-ref: d_model ${c.D} is not a multiple of n_heads ${c.H}`);
  if (c.H % c.KVH !== 0) throw new Error(`llada-ref: n_heads ${c.H} is not a multiple of n_kv_heads ${c.KVH}`);
  if ((c.D / c.H) % 2 !== 0) throw new Error(`llada-ref: head dim ${c.D / c.H} must be even for RoPE`);
}

function weight(w: RefWeights, name: string, n: number): Float32Array {
  const t = w[name];
  if (!t) throw new Error(`llada-ref: missing tensor ${name}`);
  if (t.length !== n) throw new Error(`llada-ref: tensor ${name} has ${t.length} values, expected ${n}`);
  return t;
}

// ---------------------------------------------------------------------------------------------------
// Building blocks (float64, in place into preallocated outputs)

/** out[r, o] = Σ_i x[r, i]·W[o, i] (W row-major [outD, inD], as nn.Linear stores it); accumulate adds. */
function linear(x: Float64Array, rows: number, inD: number, W: Float32Array, outD: number, out: Float64Array, accumulate = false): void {
  for (let r = 0; r < rows; ++r) {
    const xo = r * inD;
    const oo = r * outD;
    for (let o = 0; o < outD; ++o) {
      const wo = o * inD;
      let s = 0;
      for (let i = 0; i < inD; ++i) s += x[xo + i] * W[wo + i];
      if (accumulate) out[oo + o] += s;
      else out[oo + o] = s;
    }
  }
}

/** out = x / sqrt(mean(x²) + eps) · w, row by row (RMSLayerNorm). */
function rmsNorm(x: Float64Array, rows: number, D: number, w: Float32Array, eps: number, out: Float64Array): void {
  for (let r = 0; r < rows; ++r) {
    const o = r * D;
    let ss = 0;
    for (let i = 0; i < D; ++i) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; ++i) out[o + i] = x[o + i] * inv * w[i];
  }
}

/** LLaDA's inverse frequencies θ^(−2i/hd), i < hd/2, in float64. */
export function ropeInvFreq(hd: number, theta: number): Float64Array {
  const f = new Float64Array(hd / 2);
  for (let i = 0; i < hd / 2; ++i) f[i] = Math.pow(theta, (-2 * i) / hd);
  return f;
}

/**
 * Rotates one head vector x[off .. off+hd) in place to position `pos`, as LLaDA's RotaryEmbedding
 * (half-split rotate_half; positions = cat(freqs, freqs)): for j < hd/2 with a = pos·inv_freq[j],
 * (x_j, x_{j+hd/2}) ← (x_j cos a − x_{j+hd/2} sin a, x_{j+hd/2} cos a + x_j sin a).
 */
export function ropeInPlace(x: Float64Array, off: number, hd: number, pos: number, invFreq: Float64Array): void {
  const half = hd / 2;
  for (let j = 0; j < half; ++j) {
    const a = pos * invFreq[j];
    const c = Math.cos(a);
    const s = Math.sin(a);
    const x1 = x[off + j];
    const x2 = x[off + j + half];
    x[off + j] = x1 * c - x2 * s;
    x[off + j + half] = x2 * c + x1 * s;
  }
}

/** The first T positions of a cache (copies), as Fast-dLLM's `past_key_values[i][j][:, :, :T]`. */
export function truncateCache(cache: RefCache, T: number): RefCache {
  if (!(T >= 0 && T <= cache.T)) throw new Error(`truncateCache: ${T} not in [0, ${cache.T}]`);
  const kvd = cache.T > 0 ? cache.k[0].length / (cache.B * cache.T) : 0;
  const cut = (a: Float64Array): Float64Array => {
    const out = new Float64Array(cache.B * T * kvd);
    for (let b = 0; b < cache.B; ++b) out.set(a.subarray(b * cache.T * kvd, (b * cache.T + T) * kvd), b * T * kvd);
    return out;
  };
  return { B: cache.B, T, k: cache.k.map(cut), v: cache.v.map(cut) };
}

// ---------------------------------------------------------------------------------------------------
// Forward

/**
 * Logits [B, T, V] of `ids` [B, T] (row-major) and the K/V of every key position.
 * - no cache: a full forward over positions 0..T−1;
 * - cache, no replace (prefix cache, Fast-dLLM `generate_with_prefix_cache`): ids sit at positions
 *   q0..q0+T−1 with q0 = queryStart ?? cache.T; keys = cache[:q0] ⊕ new (key_len = q0 + T);
 * - cache + replace (dual cache, Fast-dLLM `generate_with_dual_cache` / `replace_position`): ids sit at
 *   positions q0..q0+T−1 inside the cache; keys = the cache with those positions replaced (key_len = cache.T).
 * Query positions match Fast-dLLM's RotaryEmbedding: key_len − query_len (prefix), block_end − query_len (dual).
 */
export function refForward(w: RefWeights, cfg: LladaRefConfig, ids: Int32Array, B: number, T: number, opts: RefForwardOptions = {}): RefForwardResult {
  checkConfig(cfg);
  const { D, H, KVH, L, F, V, eps } = cfg;
  const hd = D / H;
  const group = H / KVH;
  const kvd = KVH * hd;
  if (ids.length !== B * T) throw new Error(`refForward: ids has ${ids.length} values, B·T = ${B * T}`);
  const cache = opts.cache;
  const replace = !!opts.replace;
  if (replace && !cache) throw new Error('refForward: replace needs a cache');
  if (cache && cache.B !== B) throw new Error(`refForward: cache has ${cache.B} rows, ids ${B}`);
  let q0: number;
  let keyLen: number;
  if (!cache) {
    q0 = opts.queryStart ?? 0;
    if (q0 !== 0) throw new Error('refForward: queryStart without a cache must be 0');
    keyLen = T;
  } else if (!replace) {
    q0 = opts.queryStart ?? cache.T;
    if (!(q0 >= 0 && q0 <= cache.T)) throw new Error(`refForward: queryStart ${q0} beyond the cache (${cache.T})`);
    keyLen = q0 + T;
  } else {
    if (opts.queryStart === undefined) throw new Error('refForward: replace needs queryStart');
    q0 = opts.queryStart;
    if (!(q0 >= 0 && q0 + T <= cache.T)) throw new Error(`refForward: block [${q0}, ${q0 + T}) not inside the cache (${cache.T})`);
    keyLen = cache.T;
  }
  if (cache && cache.k.length !== L) throw new Error(`refForward: cache has ${cache.k.length} layers, model ${L}`);
  const am = opts.attentionMask;
  if (am && am.length !== B * keyLen) throw new Error(`refForward: attentionMask has ${am.length} values, B·keyLen = ${B * keyLen}`);

  const wte = weight(w, `${PREFIX}wte.weight`, V * D);
  const rows = B * T;
  const x = new Float64Array(rows * D);
  for (let r = 0; r < rows; ++r) {
    const id = ids[r];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`refForward: token id ${id} not in [0, ${V})`);
    for (let i = 0; i < D; ++i) x[r * D + i] = wte[id * D + i];
  }

  const invFreq = ropeInvFreq(hd, cfg.theta);
  const scale = 1 / Math.sqrt(hd);
  const h = new Float64Array(rows * D);
  const q = new Float64Array(rows * D);
  const kNew = new Float64Array(rows * kvd);
  const vNew = new Float64Array(rows * kvd);
  const att = new Float64Array(rows * D);
  const a = new Float64Array(rows * F);
  const u = new Float64Array(rows * F);
  const scores = new Float64Array(keyLen);
  const outCache: RefCache = { B, T: keyLen, k: [], v: [] };

  for (let l = 0; l < L; ++l) {
    const p = `${PREFIX}blocks.${l}.`;
    rmsNorm(x, rows, D, weight(w, `${p}attn_norm.weight`, D), eps, h);
    linear(h, rows, D, weight(w, `${p}q_proj.weight`, D * D), D, q);
    linear(h, rows, D, weight(w, `${p}k_proj.weight`, kvd * D), kvd, kNew);
    linear(h, rows, D, weight(w, `${p}v_proj.weight`, kvd * D), kvd, vNew);
    for (let b = 0; b < B; ++b)
      for (let t = 0; t < T; ++t) {
        const r = b * T + t;
        for (let hh = 0; hh < H; ++hh) ropeInPlace(q, r * D + hh * hd, hd, q0 + t, invFreq);
        for (let g = 0; g < KVH; ++g) ropeInPlace(kNew, r * kvd + g * hd, hd, q0 + t, invFreq);
      }

    // Keys of this layer: [B, keyLen, kvd].
    const K = new Float64Array(B * keyLen * kvd);
    const Vv = new Float64Array(B * keyLen * kvd);
    for (let b = 0; b < B; ++b) {
      if (cache) {
        const n = replace ? cache.T : q0;
        K.set(cache.k[l].subarray(b * cache.T * kvd, (b * cache.T + n) * kvd), b * keyLen * kvd);
        Vv.set(cache.v[l].subarray(b * cache.T * kvd, (b * cache.T + n) * kvd), b * keyLen * kvd);
      }
      K.set(kNew.subarray(b * T * kvd, (b + 1) * T * kvd), (b * keyLen + q0) * kvd);
      Vv.set(vNew.subarray(b * T * kvd, (b + 1) * T * kvd), (b * keyLen + q0) * kvd);
    }
    outCache.k.push(K);
    outCache.v.push(Vv);

    // Bidirectional attention; query head hh reads K/V head floor(hh / group) (repeat_interleave).
    att.fill(0);
    for (let b = 0; b < B; ++b)
      for (let t = 0; t < T; ++t) {
        const r = b * T + t;
        for (let hh = 0; hh < H; ++hh) {
          const g = Math.floor(hh / group);
          const qo = r * D + hh * hd;
          let mx = -Infinity;
          for (let j = 0; j < keyLen; ++j) {
            if (am && !am[b * keyLen + j]) {
              scores[j] = -Infinity;
              continue;
            }
            const ko = (b * keyLen + j) * kvd + g * hd;
            let s = 0;
            for (let i = 0; i < hd; ++i) s += q[qo + i] * K[ko + i];
            s *= scale;
            scores[j] = s;
            if (s > mx) mx = s;
          }
          if (mx === -Infinity) continue; // every key dropped: zero output
          let sum = 0;
          for (let j = 0; j < keyLen; ++j) {
            const e = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - mx);
            scores[j] = e;
            sum += e;
          }
          for (let j = 0; j < keyLen; ++j) {
            const pj = scores[j] / sum;
            if (pj === 0) continue;
            const vo = (b * keyLen + j) * kvd + g * hd;
            for (let i = 0; i < hd; ++i) att[qo + i] += pj * Vv[vo + i];
          }
        }
      }
    linear(att, rows, D, weight(w, `${p}attn_out.weight`, D * D), D, x, true);
    opts.after?.(2 * l, x);

    rmsNorm(x, rows, D, weight(w, `${p}ff_norm.weight`, D), eps, h);
    linear(h, rows, D, weight(w, `${p}ff_proj.weight`, F * D), F, a);
    linear(h, rows, D, weight(w, `${p}up_proj.weight`, F * D), F, u);
    for (let i = 0; i < rows * F; ++i) a[i] = (a[i] / (1 + Math.exp(-a[i]))) * u[i];
    linear(a, rows, F, weight(w, `${p}ff_out.weight`, D * F), D, x, true);
    opts.after?.(2 * l + 1, x);
  }

  rmsNorm(x, rows, D, weight(w, `${PREFIX}ln_f.weight`, D), eps, h);
  const head = cfg.tied ? wte : weight(w, `${PREFIX}ff_out.weight`, V * D);
  const logits = new Float64Array(rows * V);
  linear(h, rows, D, head, V, logits);
  if (cfg.scaleLogits) {
    const s = 1 / Math.sqrt(D);
    for (let i = 0; i < logits.length; ++i) logits[i] *= s;
  }
  return { logits, cache: outCache };
}

/** `refForward` bound to a model. */
export function lladaForward(w: RefWeights, cfg: LladaRefConfig): RefForward {
  return (ids, B, T, opts) => refForward(w, cfg, ids, B, T, opts);
}

// ---------------------------------------------------------------------------------------------------
// Sampler helpers

/**
 * Tokens to unmask at each of `steps` steps for a block with `maskedCount` masks: base = n // steps,
 * the first n % steps steps get one more (LLaDA generate.py `get_num_transfer_tokens`).
 */
export function numTransferTokens(maskedCount: number, steps: number): number[] {
  if (!(Number.isInteger(maskedCount) && maskedCount >= 0 && Number.isInteger(steps) && steps > 0))
    throw new Error(`numTransferTokens: bad arguments (${maskedCount}, ${steps})`);
  const base = Math.floor(maskedCount / steps);
  const rem = maskedCount % steps;
  return Array.from({ length: steps }, (_, i) => base + (i < rem ? 1 : 0));
}

/** Index of the largest of a[off .. off+n) (the first one on ties, as torch.argmax). */
export function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  let bv = a[off];
  for (let i = 1; i < n; ++i)
    if (a[off + i] > bv) {
      bv = a[off + i];
      best = i;
    }
  return best;
}

/** softmax(a[off .. off+n))[idx] in float64 (max-subtracted). */
export function softmaxAt(a: ArrayLike<number>, off: number, n: number, idx: number): number {
  let mx = -Infinity;
  for (let i = 0; i < n; ++i) if (a[off + i] > mx) mx = a[off + i];
  let sum = 0;
  for (let i = 0; i < n; ++i) sum += Math.exp(a[off + i] - mx);
  return Math.exp(a[off + idx] - mx) / sum;
}

/** softmax of a[off .. off+n) into out (float64). */
export function softmax(a: ArrayLike<number>, off: number, n: number, out: Float64Array = new Float64Array(n)): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < n; ++i) if (a[off + i] > mx) mx = a[off + i];
  let sum = 0;
  for (let i = 0; i < n; ++i) sum += out[i] = Math.exp(a[off + i] - mx);
  for (let i = 0; i < n; ++i) out[i] /= sum;
  return out;
}

/**
 * Indices of the k largest conf[off .. off+n), best first; among equal values the lowest index comes
 * first (torch.topk leaves the order of ties unspecified). -inf entries come last, also by index.
 */
export function topk(conf: ArrayLike<number>, off: number, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((i, j) => {
    const a = conf[off + i];
    const b = conf[off + j];
    if (a > b) return -1;
    if (a < b) return 1;
    return i - j;
  });
  return idx.slice(0, Math.max(0, Math.min(k, n)));
}

export type Remasking = 'low_confidence' | 'random';

export interface RefSampleOptions {
  genLength: number;
  blockLength: number;
  /** Total steps over all blocks (a multiple of genLength / blockLength). */
  steps: number;
  remasking?: Remasking;
  /** 0: plain argmax. */
  temperature?: number;
  maskId: number;
  /** 1/0 per prompt position [B, P] (left padding); generated positions are always kept. */
  attentionMask?: ArrayLike<number>;
  /** Uniform [0, 1) source for the Gumbel noise and random remasking (default: the seeded test rand). */
  rng?: () => number;
}

export interface RefGenerateOptions extends RefSampleOptions {
  /** Unsupervised classifier-free guidance scale (0: off). */
  cfgScale?: number;
}

export interface RefFastOptions extends RefSampleOptions {
  cache?: 'none' | 'prefix' | 'dual';
  /** Confidence-aware parallel decoding (Fast-dLLM): commit every masked block token with confidence ≥ threshold. */
  threshold?: number;
}

export interface RefGenerateResult {
  /** [B, P + genLength] */
  x: Int32Array;
  /** Forward passes (a cfg pass over 2B rows counts once). */
  nfe: number;
  /** commits[call][row]: tokens unmasked after forward `call`. */
  commits: number[][];
  /**
   * Threshold mode: the smallest |confidence − threshold| among the compared positions (Infinity
   * otherwise). A test compares f32 logits against this float64 run, so a decision closer to the
   * threshold than f32 rounding can flip legitimately; tests redraw inputs when it is under 1e-4.
   */
  margin: number;
}

/**
 * One denoising decision over Tq query positions per row (shared by both samplers):
 * x0 = argmax(logits with Gumbel noise) (noise: exp(l) / (−log u)^T in float64, u over [B, Tq, V] in
 * row-major order; T = 0 → plain argmax); conf = softmax(logits)[x0] (low_confidence) or u ~ rng over
 * [B, Tq] (random, drawn after the noise); conf = −inf where !maskIdx or at positions ≥ cutoff; x0 = x
 * where !maskIdx. Then per row: k-mode commits topk(conf, k[row]); threshold mode commits the masked
 * positions sorted by conf, the best always, the rest when conf ≥ threshold (get_transfer_index).
 * Writes the commits into xs (row stride `stride`, query 0 at `start`) and returns the count per row.
 */
function transferStep(
  logits: Float64Array, B: number, Tq: number, V: number,
  xs: Int32Array, stride: number, start: number,
  maskIdx: Uint8Array, cutoff: number,
  k: number[] | null, threshold: number | undefined,
  temperature: number, remasking: Remasking, rng: () => number,
  margin: { min: number } = { min: Infinity },
): number[] {
  const x0 = new Int32Array(B * Tq);
  if (temperature === 0) {
    for (let r = 0; r < B * Tq; ++r) x0[r] = argmax(logits, r * V, V);
  } else {
    const noisy = new Float64Array(V);
    for (let r = 0; r < B * Tq; ++r) {
      for (let i = 0; i < V; ++i) noisy[i] = Math.exp(logits[r * V + i]) / Math.pow(-Math.log(rng()), temperature);
      x0[r] = argmax(noisy, 0, V);
    }
  }
  const conf = new Float64Array(B * Tq);
  if (remasking === 'low_confidence') {
    for (let r = 0; r < B * Tq; ++r) conf[r] = softmaxAt(logits, r * V, V, x0[r]);
  } else if (remasking === 'random') {
    for (let r = 0; r < B * Tq; ++r) conf[r] = rng();
  } else {
    throw new Error(`remasking '${String(remasking)}' is not implemented`);
  }
  const counts: number[] = [];
  for (let b = 0; b < B; ++b) {
    for (let t = 0; t < Tq; ++t) {
      const r = b * Tq + t;
      if (!maskIdx[r] || t >= cutoff) conf[r] = -Infinity;
      if (!maskIdx[r]) x0[r] = xs[b * stride + start + t];
    }
    let kk: number;
    if (threshold === undefined) kk = k![b];
    else {
      kk = 0;
      for (let t = 0; t < Tq; ++t) kk += maskIdx[b * Tq + t];
    }
    const sel = topk(conf, b * Tq, Tq, kk);
    let n = 0;
    for (let s = 0; s < sel.length; ++s) {
      if (threshold !== undefined && s > 0 && Number.isFinite(conf[b * Tq + sel[s]]))
        margin.min = Math.min(margin.min, Math.abs(conf[b * Tq + sel[s]] - threshold));
      if (threshold !== undefined && s > 0 && conf[b * Tq + sel[s]] < threshold) continue;
      const pos = b * stride + start + sel[s];
      if (xs[pos] !== x0[b * Tq + sel[s]]) ++n;
      xs[pos] = x0[b * Tq + sel[s]];
    }
    counts.push(n);
  }
  return counts;
}

interface Setup {
  x: Int32Array;
  am: Uint8Array | undefined;
  T: number;
  numBlocks: number;
  stepsPerBlock: number;
}

function setup(prompt: Int32Array, B: number, P: number, o: RefSampleOptions): Setup {
  if (prompt.length !== B * P) throw new Error(`generate: prompt has ${prompt.length} ids, B·P = ${B * P}`);
  const { genLength: G, blockLength: BL, steps } = o;
  if (!(G > 0 && BL > 0 && G % BL === 0)) throw new Error(`generate: gen_length ${G} must be a positive multiple of block_length ${BL}`);
  const numBlocks = G / BL;
  if (!(steps > 0 && steps % numBlocks === 0)) throw new Error(`generate: steps ${steps} must be a positive multiple of the ${numBlocks} blocks`);
  const T = P + G;
  const x = new Int32Array(B * T).fill(o.maskId);
  for (let b = 0; b < B; ++b) x.set(prompt.subarray(b * P, (b + 1) * P), b * T);
  let am: Uint8Array | undefined;
  if (o.attentionMask) {
    if (o.attentionMask.length !== B * P) throw new Error(`generate: attentionMask has ${o.attentionMask.length} values, B·P = ${B * P}`);
    am = new Uint8Array(B * T).fill(1);
    for (let b = 0; b < B; ++b) for (let t = 0; t < P; ++t) am[b * T + t] = o.attentionMask[b * P + t] ? 1 : 0;
  }
  return { x, am, T, numBlocks, stepsPerBlock: steps / numBlocks };
}

function blockMasks(x: Int32Array, B: number, T: number, s0: number, e0: number, maskId: number): number[] {
  const n: number[] = [];
  for (let b = 0; b < B; ++b) {
    let c = 0;
    for (let t = s0; t < e0; ++t) if (x[b * T + t] === maskId) ++c;
    n.push(c);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------
// LLaDA generate.py

/**
 * LLaDA's semi-autoregressive low-confidence remasking sampler (ML-GSAI/LLaDA generate.py `generate`),
 * batched over B left-padded rows. Per block, `steps / numBlocks` forwards over the whole sequence;
 * step i unmasks numTransferTokens(block masks, steps per block)[i] tokens per row.
 * With cfgScale > 0: one forward over [x; un_x] (un_x = x with every prompt_index position — pads
 * included — set to the mask), the attention mask duplicated, logits = un + (cfg+1)(cond − un).
 * Quirks of the reference: generate.py runs softmax in the model dtype (bf16 for the published runs),
 * here it is float64 (as Fast-dLLM and MMaDA do); generate.py raises NameError for cfg > 0 without an
 * attention mask (`attention_mask_` unbound), here the mask is simply absent; when steps per block
 * exceeds the block's masks, the trailing steps commit nothing but still run a forward (counted in nfe).
 */
export function refGenerate(forward: RefForward, prompt: Int32Array, B: number, P: number, o: RefGenerateOptions): RefGenerateResult {
  const { x, am, T, numBlocks, stepsPerBlock } = setup(prompt, B, P, o);
  const { maskId, blockLength: BL } = o;
  const cfg = o.cfgScale ?? 0;
  const temperature = o.temperature ?? 0;
  const remasking = o.remasking ?? 'low_confidence';
  const rng = o.rng ?? rand;
  const promptIndex = new Uint8Array(B * T);
  for (let i = 0; i < B * T; ++i) promptIndex[i] = x[i] !== maskId ? 1 : 0;
  let nfe = 0;
  const commits: number[][] = [];
  for (let nb = 0; nb < numBlocks; ++nb) {
    const s0 = P + nb * BL;
    const e0 = s0 + BL;
    const nt = blockMasks(x, B, T, s0, e0, maskId).map((n) => numTransferTokens(n, stepsPerBlock));
    for (let i = 0; i < stepsPerBlock; ++i) {
      const maskIdx = new Uint8Array(B * T);
      for (let r = 0; r < B * T; ++r) maskIdx[r] = x[r] === maskId ? 1 : 0;
      let logits: Float64Array;
      if (cfg > 0) {
        const xx = new Int32Array(2 * B * T);
        xx.set(x, 0);
        for (let r = 0; r < B * T; ++r) xx[B * T + r] = promptIndex[r] ? maskId : x[r];
        let am2: Uint8Array | undefined;
        if (am) {
          am2 = new Uint8Array(2 * B * T);
          am2.set(am, 0);
          am2.set(am, B * T);
        }
        const both = forward(xx, 2 * B, T, { attentionMask: am2 }).logits;
        const half = both.length / 2;
        logits = new Float64Array(half);
        for (let j = 0; j < half; ++j) logits[j] = both[half + j] + (cfg + 1) * (both[j] - both[half + j]);
      } else {
        logits = forward(x, B, T, { attentionMask: am }).logits;
      }
      ++nfe;
      commits.push(transferStep(logits, B, T, logits.length / (B * T), x, T, 0, maskIdx, e0, nt.map((n) => n[i]), undefined, temperature, remasking, rng));
    }
  }
  return { x, nfe, commits, margin: Infinity };
}

// ---------------------------------------------------------------------------------------------------
// Fast-dLLM llada/generate.py

/**
 * Fast-dLLM's samplers, batched over B left-padded rows:
 * - cache 'none' (`generate`): per block, full forwards until no row has a mask in the block; forward i
 *   commits numTransferTokens(...)[i] per row, or with a threshold every masked block token whose
 *   confidence ≥ threshold and always the row's best one (a row whose block is done commits nothing);
 * - 'prefix' (`generate_with_prefix_cache`): per block a full forward (commits step 0 and fills the
 *   cache), the cache cut to the block start, then forwards over x[:, blockStart:] (block + suffix)
 *   against the cached prefix until the block is done;
 * - 'dual' (`generate_with_dual_cache`): per block a full forward (commits step 0, fills the cache),
 *   then forwards over the block only, replacing the block's K/V in the full cache (prefix and suffix
 *   K/V stay those of the block's first forward).
 * Reference quirks kept: the cached variants always run at least one cached forward per block, even
 * when the full forward already finished the block (nfe ≥ 2 per block); the prefix-cache loop draws
 * the Gumbel noise twice per step (a discarded argmax before get_transfer_index) — with temperature > 0
 * that consumes the rng twice; with steps == numBlocks and a cache the reference indexes
 * num_transfer_tokens[:, 1] out of range (IndexError) — here that step commits nothing.
 * Not in the reference: B > 1 (it builds x with batch 1) and the attention mask (it ignores padding).
 */
export function refGenerateFast(forward: RefForward, prompt: Int32Array, B: number, P: number, o: RefFastOptions): RefGenerateResult {
  const { x, am, T, numBlocks, stepsPerBlock } = setup(prompt, B, P, o);
  const { maskId, blockLength: BL, threshold } = o;
  const mode = o.cache ?? 'none';
  const temperature = o.temperature ?? 0;
  const remasking = o.remasking ?? 'low_confidence';
  const rng = o.rng ?? rand;
  let nfe = 0;
  const commits: number[][] = [];
  const margin = { min: Infinity };
  const blockDone = (s0: number, e0: number): boolean => blockMasks(x, B, T, s0, e0, maskId).every((n) => n === 0);

  for (let nb = 0; nb < numBlocks; ++nb) {
    const s0 = P + nb * BL;
    const e0 = s0 + BL;
    const nt = blockMasks(x, B, T, s0, e0, maskId).map((n) => numTransferTokens(n, stepsPerBlock));
    const kAt = (i: number): number[] | null => (threshold !== undefined ? null : nt.map((n) => (i < n.length ? n[i] : 0)));
    const guard = (i: number): void => {
      if (threshold === undefined && i >= stepsPerBlock) throw new Error(`refGenerateFast: block ${nb} still has masks after ${stepsPerBlock} steps`);
    };
    // With a threshold the reference loops until the block is done; a row that committed nothing while
    // masked (its best prediction was the mask id itself) would loop forever there.
    const record = (counts: number[], before: number[]): void => {
      commits.push(counts);
      if (threshold !== undefined && counts.some((c, b) => c === 0 && before[b] > 0))
        throw new Error(`refGenerateFast: a row made no progress in block ${nb} (the model predicted the mask id); the reference would not terminate`);
    };

    if (mode === 'none') {
      for (let i = 0; ; ++i) {
        guard(i);
        const maskIdx = new Uint8Array(B * T);
        for (let b = 0; b < B; ++b) for (let t = 0; t < e0; ++t) maskIdx[b * T + t] = x[b * T + t] === maskId ? 1 : 0;
        const { logits } = forward(x, B, T, { attentionMask: am });
        ++nfe;
        const before = blockMasks(x, B, T, s0, e0, maskId);
        record(transferStep(logits, B, T, logits.length / (B * T), x, T, 0, maskIdx, T, kAt(i), threshold, temperature, remasking, rng, margin), before);
        if (blockDone(s0, e0)) break;
      }
      continue;
    }

    // Both cached variants start the block with a full forward that fills the cache.
    const full = forward(x, B, T, { attentionMask: am });
    ++nfe;
    {
      const maskIdx = new Uint8Array(B * T);
      for (let b = 0; b < B; ++b) for (let t = 0; t < e0; ++t) maskIdx[b * T + t] = x[b * T + t] === maskId ? 1 : 0;
      const before = blockMasks(x, B, T, s0, e0, maskId);
      record(transferStep(full.logits, B, T, full.logits.length / (B * T), x, T, 0, maskIdx, T, kAt(0), threshold, temperature, remasking, rng, margin), before);
    }

    if (mode === 'prefix') {
      const prefix = truncateCache(full.cache, s0);
      const Tq = T - s0;
      // Fast-dLLM tests for a finished block before each cached step: a first full pass that
      // committed the whole block (threshold mode) costs no further forward.
      for (let i = 1; !blockDone(s0, e0); ++i) {
        guard(i);
        const ids = new Int32Array(B * Tq);
        const maskIdx = new Uint8Array(B * Tq);
        for (let b = 0; b < B; ++b)
          for (let t = 0; t < Tq; ++t) {
            ids[b * Tq + t] = x[b * T + s0 + t];
            maskIdx[b * Tq + t] = t < BL && ids[b * Tq + t] === maskId ? 1 : 0;
          }
        const { logits } = forward(ids, B, Tq, { cache: prefix, queryStart: s0, attentionMask: am });
        ++nfe;
        const V = logits.length / (B * Tq);
        // Fast-dLLM draws (and discards) one Gumbel-noised argmax here before get_transfer_index.
        if (temperature !== 0) for (let j = 0; j < B * Tq * V; ++j) rng();
        const before = blockMasks(x, B, T, s0, e0, maskId);
        record(transferStep(logits, B, Tq, V, x, T, s0, maskIdx, Tq, kAt(i), threshold, temperature, remasking, rng, margin), before);
      }
    } else if (mode === 'dual') {
      let cache = full.cache;
      for (let i = 1; !blockDone(s0, e0); ++i) {
        guard(i);
        const ids = new Int32Array(B * BL);
        const maskIdx = new Uint8Array(B * BL);
        for (let b = 0; b < B; ++b)
          for (let t = 0; t < BL; ++t) {
            ids[b * BL + t] = x[b * T + s0 + t];
            maskIdx[b * BL + t] = ids[b * BL + t] === maskId ? 1 : 0;
          }
        const out = forward(ids, B, BL, { cache, queryStart: s0, replace: true, attentionMask: am });
        cache = out.cache; // Fast-dLLM writes the block's K/V into the cache in place
        ++nfe;
        const before = blockMasks(x, B, T, s0, e0, maskId);
        record(transferStep(out.logits, B, BL, out.logits.length / (B * BL), x, T, s0, maskIdx, BL, kAt(i), threshold, temperature, remasking, rng, margin), before);
      }
    } else {
      throw new Error(`refGenerateFast: unknown cache '${String(mode)}'`);
    }
  }
  return { x, nfe, commits, margin: margin.min };
}
