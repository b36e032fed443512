// One denoising step's decisions for one sequence, in float64 as the reference makes them (ML-GSAI/LLaDA
// generate.py; NVlabs/Fast-dLLM llada/generate.py `get_transfer_index`): the prediction x0 of every masked
// position of the current block (argmax, with Gumbel noise when T > 0), its confidence (the softmax
// probability of x0, or a uniform draw for random remasking) and which positions commit.
import type { Remasking } from './options';

/** A seeded uniform source on (0, 1) with 53 random bits (mulberry32 twice). */
export class Uniform {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  #u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  next(): number {
    for (;;) {
      const u = ((this.#u32() >>> 5) * 67108864 + (this.#u32() >>> 6)) / 9007199254740992;
      if (u > 0) return u;
    }
  }
}

export interface PickParams {
  V: number;
  temperature: number;
  remasking: Remasking;
  /** Classifier-free guidance scale (0: off; then `uncond` is unused). */
  cfgScale: number;
  rng: Uniform;
}

/**
 * For position j of the block (logits row `cond[j·V …]`, and `uncond`'s with guidance): x0[j] and conf[j].
 * Positions not masked get conf −∞ (never chosen). Guidance: un + (s + 1)(cond − un). Gumbel noise as the
 * reference adds it, exp(l) / (−log u)^T, compared in the log domain (l − T·log(−log u): the same argmax
 * without overflow). Confidence: softmax of the guided logits, float64, at x0.
 */
export function predictBlock(cond: Float32Array, uncond: Float32Array | null, masked: readonly boolean[], p: PickParams,
  x0: Int32Array, conf: Float64Array): void {
  const { V, temperature: T, cfgScale: s } = p;
  const row = new Float64Array(V);
  for (let j = 0; j < masked.length; ++j) {
    if (!masked[j]) {
      conf[j] = -Infinity;
      continue;
    }
    const o = j * V;
    if (uncond && s > 0) for (let v = 0; v < V; ++v) row[v] = uncond[o + v] + (s + 1) * (cond[o + v] - uncond[o + v]);
    else for (let v = 0; v < V; ++v) row[v] = cond[o + v];
    let best = 0, bestScore = -Infinity, mx = -Infinity;
    for (let v = 0; v < V; ++v) {
      const l = row[v];
      if (l > mx) mx = l;
      const score = T === 0 ? l : l - T * Math.log(-Math.log(p.rng.next()));
      if (score > bestScore) bestScore = score, best = v;  // first maximum, as torch.argmax
    }
    x0[j] = best;
    if (p.remasking === 'random') {
      conf[j] = p.rng.next();
      continue;
    }
    let sum = 0;
    for (let v = 0; v < V; ++v) sum += Math.exp(row[v] - mx);
    conf[j] = Math.exp(row[best] - mx) / sum;
  }
}

/** Indices of `conf` by decreasing confidence, ties by lower index (torch.topk leaves ties unordered). */
function ranked(conf: Float64Array): number[] {
  const idx = Array.from(conf.keys()).filter((j) => conf[j] !== -Infinity);
  return idx.sort((a, b) => (conf[b] - conf[a]) || a - b);
}

/** LLaDA: the k most confident masked positions. */
export function topK(conf: Float64Array, k: number): number[] {
  return ranked(conf).slice(0, k);
}

/** Fast-dLLM's threshold rule: the most confident masked position, and every other one at or above `threshold`. */
export function aboveThreshold(conf: Float64Array, threshold: number): number[] {
  const r = ranked(conf);
  return r.filter((j, i) => i === 0 || conf[j] >= threshold);
}
