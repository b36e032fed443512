// The most likely tokens of one logits row under the sampler's own distribution (core/sample.h), for
// `GenerateOptions.topLogprobs`: the same penalty, temperature, top-k / top-p / min-p filter and
// renormalization as the `sample` op, so the chosen token's entry equals the logprob the sampler returns
// (to f32 rounding). The weights w = exp(z - max z) use the op's own exp polynomial (fmaf-exact), the
// sums are in double as in the kernels. Cost: O(V) per row, plus a typed-array sort of the weights when
// top-k or top-p is on (only for requests that ask for top log-probabilities).
import type { SampleOptions } from '../ops';

export interface TopLogprob {
  tokenId: number;
  logprob: number;
}

const f32 = Math.fround;
// fmaf(a, b, c) for f32 operands: a·b is exact in double; the sum is rounded to double, then to f32
// (a double rounding that can differ from fmaf's single rounding only on an exact f32 midpoint).
const fmaf = (a: number, b: number, c: number): number => f32(a * b + c);
// rintf: round half to even.
const rint = (x: number): number => {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const LOG2E = f32(1.44269504088896341), C1 = f32(0.693359375), C2 = f32(-2.12194440e-4);
const HI = f32(88.72283), LO = f32(-103.97208);
const P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1].map(f32);

/** core/sample.h's sample_expf. */
export function sampleExpf(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x > HI) return Infinity;
  if (x < LO) return 0;
  const k = rint(f32(x * LOG2E));
  let r = fmaf(-k, C1, x);
  r = fmaf(-k, C2, r);
  const r2 = fmaf(r, r, 0);
  let q = P[0];
  for (let i = 1; i < P.length; ++i) q = fmaf(q, r, P[i]);
  const y = f32(fmaf(q, r2, r) + 1);
  return f32(y * 2 ** k);
}

/**
 * The `n` most likely tokens of `row` (f32 logits [V]) after the sampler's filters, most likely first
 * (ties: lower id first), each with log p under the renormalized kept distribution (greedy: the
 * log-softmax at temperature 1). `prev` lists the token ids the repetition penalty applies to. Tokens the
 * filters drop are not listed, so fewer than n may come back.
 */
export function topLogprobs(row: Float32Array, n: number, opts: SampleOptions, prev: readonly number[] | null): TopLogprob[] {
  const V = row.length;
  const s = Float32Array.from(row);
  const pen = f32(opts.repetitionPenalty ?? 1);
  if (prev && pen !== 1) for (const t of prev) if (t >= 0 && t < V) s[t] = row[t] > 0 ? f32(row[t] / pen) : f32(row[t] * pen);
  const temperature = f32(opts.temperature ?? 1);

  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; ++i) {
      if (Number.isNaN(s[best])) break;
      if (Number.isNaN(s[i]) || s[i] > s[best]) best = i;
    }
    const m = s[best];
    let sum = 0;
    for (let i = 0; i < V; ++i) sum += sampleExpf(f32(s[i] - m));
    const logZ = Math.log(sum);
    return topOf(s, n, V).map((i) => ({ tokenId: i, logprob: (i === best ? 0 : f32(s[i] - m)) - logZ }));
  }

  let m = -Infinity;
  for (let i = 0; i < V; ++i) {
    s[i] = f32(s[i] / temperature);
    if (s[i] > m) m = s[i];
  }
  for (let i = 0; i < V; ++i) s[i] = sampleExpf(f32(s[i] - m)); // w, max 1
  const topK = opts.topK ?? 0, topP = opts.topP ?? 1, minP = f32(opts.minP ?? 0);
  const useK = topK > 0 && topK < V, useP = topP < 1;
  // the kept set is the first `kept` tokens of the (w desc, id asc) order; its mass does not depend on
  // how ties are ordered, so the sorted weights alone give it
  let kept = V, total = 0;
  if (useK || useP || minP > 0) {
    const desc = Float32Array.from(s).sort().reverse(); // NaN sorts last, then first after reverse: never kept
    let lo = 0;
    while (lo < V && Number.isNaN(desc[lo])) ++lo;
    const w = desc.subarray(lo);
    kept = useK ? Math.min(topK, w.length) : w.length;
    if (useP) {
      let mass = 0;
      for (let r = 0; r < kept; ++r) mass += w[r];
      const target = topP * mass;
      let cum = 0;
      for (let r = 0; r < kept; ++r) {
        cum += w[r];
        if (cum >= target) { kept = r + 1; break; }
      }
    }
    if (minP > 0) { let c = 0; while (c < kept && w[c] >= minP) ++c; kept = c; }
    for (let r = 0; r < kept; ++r) total += w[r];
  } else {
    for (let i = 0; i < V; ++i) if (!Number.isNaN(s[i])) total += s[i];
  }
  const logM = Math.log(total);
  return topOf(s, Math.min(n, kept), V).filter((i) => s[i] > 0).map((i) => ({ tokenId: i, logprob: Math.log(s[i]) - logM }));
}

// Ids of the n largest values of x (value desc, id asc; NaN never listed).
function topOf(x: Float32Array, n: number, V: number): number[] {
  const top: number[] = [];
  if (n <= 0) return top;
  for (let i = 0; i < V; ++i) {
    const v = x[i];
    if (Number.isNaN(v) || (top.length === n && !(v > x[top[n - 1]]))) continue;
    let at = top.length;
    while (at > 0 && v > x[top[at - 1]]) --at; // after equal values: a lower id comes first
    top.splice(at, 0, i);
    if (top.length > n) top.pop();
  }
  return top;
}
