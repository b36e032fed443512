// Float64 reference of MMaDA's text-to-image sampler in its deterministic form (argmax draws, no noise),
// following Gen-Verse/MMaDA models/modeling_mmada.py `t2i_generate` (and models/sampling.py
// `cosine_schedule`, `mask_by_random_topk`) step for step, over the float64 LLaDA forward of llada-ref.ts.
// One deliberate reading: the reference takes the unconditional text part as `uncond_input_ids[:, :resolution
// + 1]`, which is the padded text part only because its resolution (512) equals its max_text_len (512); here
// the text part is used, whatever the sizes.
import type { RefForward } from './llada-ref';

export interface MaskgitRefLayout {
  llmVocabSize: number;
  codebookSize: number;
  imageTokens: number;
  maskId: number;
  /** First image position; the text part is [0, imageStart − 1) and <|soi|> sits at imageStart − 1. */
  imageStart: number;
}

/** ids / attention: [B, L] of the t2i sequences (and of the empty-text ones for guidance). */
export function refT2i(forward: RefForward, ids: Int32Array, attention: Uint8Array, uncondIds: Int32Array | null, uncondAttention: Uint8Array | null,
  B: number, L: number, m: MaskgitRefLayout, o: { steps: number; guidance: number }): Int32Array {
  const x = Int32Array.from(ids), N = m.imageTokens, S = m.imageStart, K = m.codebookSize, V0 = m.llmVocabSize;
  const f = Math.fround;
  let sampled = new Int32Array(B * N);
  for (let s = 0; s < o.steps; ++s) {
    const guided = o.guidance > 0 && uncondIds !== null;
    const R = guided ? 2 * B : B;
    const batch = new Int32Array(R * L), mask = new Uint8Array(R * L);
    batch.set(x);
    mask.set(attention);
    if (guided && uncondIds && uncondAttention) {
      for (let b = 0; b < B; ++b) {
        batch.set(uncondIds.subarray(b * L, b * L + S), (B + b) * L);       // the empty-text prefix
        batch.set(x.subarray(b * L + S, (b + 1) * L), (B + b) * L + S);   // the current image tokens
      }
      mask.set(uncondAttention, B * L);
    }
    const { logits } = forward(batch, R, L, { attentionMask: mask });
    const V = logits.length / (R * L);
    const ratio = (s + 1) / o.steps;
    const maskRatio = f(Math.cos(f(f(f(ratio) * f(Math.PI)) * 0.5)));
    sampled = new Int32Array(B * N);
    for (let b = 0; b < B; ++b) {
      const conf = new Float64Array(N);
      let unknown = 0;
      for (let i = 0; i < N; ++i) {
        const at = (row: number) => (row * L + S + i) * V + V0;  // the code slice of image position i
        const l = Float64Array.from({ length: K }, (_, k) => {
          const c = logits[at(b) + k];
          return guided ? (1 + o.guidance) * c - o.guidance * logits[at(B + b) + k] : c;
        });
        let mx = -Infinity, best = 0;
        for (let k = 0; k < K; ++k) if (l[k] > mx) mx = l[k], best = k;
        let sum = 0;
        for (let k = 0; k < K; ++k) sum += Math.exp(l[k] - mx);
        const tok = x[b * L + S + i];
        const known = tok !== m.maskId;
        unknown += known ? 0 : 1;
        sampled[b * N + i] = known ? tok - V0 : best;
        // selected_probs: finfo(f32).max for known positions; confidence = log(p) (no noise)
        conf[i] = known ? Math.log(3.4028234663852886e38) : Math.log(Math.max(Math.exp(l[best] - mx) / sum, 1e-20));
      }
      const len = Math.max(1, Math.min(unknown - 1, Math.floor(f(N * maskRatio))));
      const cut = Float64Array.from(conf).sort()[len];
      for (let i = 0; i < N; ++i) x[b * L + S + i] = conf[i] < cut ? m.maskId : sampled[b * N + i] + V0;
    }
  }
  return sampled;
}
