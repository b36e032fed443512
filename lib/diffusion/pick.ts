// Which masked positions of the block commit, given each one's confidence (the predictions and their
// confidences come from the native denoise_pick op, csrc/core/denoise.h): LLaDA's top-k of the linear
// schedule (ML-GSAI/LLaDA generate.py) or Fast-dLLM's threshold rule (llada/generate.py `get_transfer_index`).

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
