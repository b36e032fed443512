// MMaDA's text-to-image MaskGIT sampler (Gen-Verse/MMaDA models/modeling_mmada.py `t2i_generate`, with
// models/sampling.py `cosine_schedule`, `mask_by_random_topk`), batched, over any Denoiser:
//   every image token starts masked; per step s of T, one forward of the whole sequence (guidance: the same
//   image tokens after the empty-text prompt, batched, mixed as (1 + g)·cond − g·uncond); the logits of the
//   image positions restricted to the codebook slice; a code drawn per position (multinomial: Gumbel-max at
//   temperature 1 here; deterministic mode: argmax); known positions keep their code and an infinite
//   confidence (finfo.max's log); ratio = (s + 1)/T, mask_len = floor(N·cos(π/2·ratio)) clamped to
//   [1, unknown − 1]; the temperature compounds, t ← t·(1 − ratio); confidence = log p + t·Gumbel; the
//   mask_len least confident positions are masked again. The last step's draws are the image.
// The float32 arithmetic of the schedule (torch tensors) is reproduced with Math.fround, so mask_len is the
// reference's exactly.
import { MambakitError } from '../errors';
import type { MmadaLayout, T2iBatch } from './mmada-prompts';
import type { Denoiser } from './sampler';

export interface ImageGenOptions {
  /** MaskGIT steps (default 12: MMaDA's generation_timesteps). */
  steps?: number;
  /** Classifier-free guidance g ≥ 0 (default 1.5, MMaDA's demo config): (1 + g)·cond − g·uncond. */
  guidance?: number;
  /** Confidence-noise temperature (default 1, annealed by (1 − ratio) every step). */
  temperature?: number;
  /** Argmax draws and no noise: reproducible token for token (default false). */
  deterministic?: boolean;
  seed?: number;
  signal?: AbortSignal;
}

export interface ImageGenStep {
  step: number;
  /** Codes drawn this step, [B, N] (every position: the known ones keep theirs). */
  codes: Int32Array;
  /** Positions masked again for the next step, per row. */
  masked: number;
}

export interface ImageGenResult {
  /** [B, N] */
  codes: Int32Array;
  B: number;
  N: number;
  nfe: number;
  finishReason: 'length' | 'abort';
}

const bad = (msg: string): MambakitError => new MambakitError('E_ARG', `t2i: ${msg}`);

export function resolveImageGenOptions(o: ImageGenOptions): Required<Omit<ImageGenOptions, 'signal'>> & { signal: AbortSignal | null } {
  const steps = o.steps ?? 12, guidance = o.guidance ?? 1.5, temperature = o.temperature ?? 1;
  if (!(Number.isInteger(steps) && steps >= 1)) throw bad(`steps must be an integer ≥ 1, got ${String(o.steps)}`);
  if (!(typeof guidance === 'number' && guidance >= 0 && Number.isFinite(guidance))) throw bad(`guidance must be a number ≥ 0, got ${String(o.guidance)}`);
  if (!(typeof temperature === 'number' && temperature >= 0 && Number.isFinite(temperature))) throw bad(`temperature must be a number ≥ 0, got ${String(o.temperature)}`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw bad(`seed must be an integer in [0, 2^32), got ${String(o.seed)}`);
  return { steps, guidance, temperature, deterministic: o.deterministic ?? false, seed, signal: o.signal ?? null };
}

/** mask_len of step s (0-based) of T for N image tokens and `unknown` masked ones, in the reference's float32. */
export function maskLen(s: number, T: number, N: number, unknown: number): number {
  const f = Math.fround;
  const ratio = f((s + 1) / T);  // torch.tensor(ratio): float32
  const maskRatio = f(Math.cos(f(f(ratio * f(Math.PI)) * 0.5)));  // float32 products, as torch
  const len = Math.floor(f(N * maskRatio));
  return Math.max(1, Math.min(unknown - 1, len));
}

/** The reference's clamped logs: log(max(x, 1e-20)) and Gumbel −log(−log u). */
const clampLog = (x: number): number => Math.log(Math.max(x, 1e-20));
const gumbel = (u: number): number => -clampLog(-clampLog(u));
const LOG_FLT_MAX = Math.log(3.4028234663852886e38);

/** A seeded uniform on [0, 1) for the confidence noise (mulberry32, 32 bits). */
function uniform32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs MaskGIT over t2i sequences (`batch`: every image position masked or given), yielding each step. `uncond`
 * (the empty-text prompt's text part, [B, imageStart] ids and attention) is required when guidance > 0.
 */
export async function* maskgit(den: Denoiser, m: MmadaLayout, batch: T2iBatch, uncond: T2iBatch | null,
  o: ReturnType<typeof resolveImageGenOptions>): AsyncGenerator<ImageGenStep, ImageGenResult> {
  const { B, L, imageStart } = batch, N = m.imageTokens;
  const guided = o.guidance > 0;
  if (guided && (!uncond || uncond.B !== B || uncond.L !== L)) throw bad('guidance needs an unconditional batch of the same shape');
  const R = guided ? 2 * B : B;
  const ids = new Int32Array(R * L), bias = new Float32Array(R * L);
  ids.set(batch.ids);
  if (guided && uncond) ids.set(uncond.ids, B * L);
  for (let r = 0; r < R; ++r) {
    const a = r < B ? batch.attention : uncond!.attention;
    for (let t = 0; t < L; ++t) if (!a[(r % B) * L + t]) bias[r * L + t] = -Infinity;
  }
  const noise = uniform32(o.seed ^ 0x5bd1e995);
  let temperature = o.temperature;
  let codes = new Int32Array(B * N);
  let nfe = 0;
  for (let s = 0; s < o.steps; ++s) {
    if (o.signal?.aborted) return { codes, B, N, nfe, finishReason: 'abort' };
    // the unconditional rows carry the current image tokens after their own text part
    if (guided) for (let b = 0; b < B; ++b) ids.copyWithin((B + b) * L + imageStart, b * L + imageStart, b * L + imageStart + N);
    const positions = Int32Array.from({ length: B * N }, (_, i) => i);
    const { x0, conf } = await den.predict({
      ids: ids.slice(), rows: R, n: L, offset: 0, keys: L, cache: null, keyBias: bias, logitsFrom: imageStart, logitsCount: N,
    }, {
      positions, guided, cfgScale: o.guidance, temperature: o.deterministic ? 0 : 1, random: false, seed: o.seed, step: s,
      columns: [m.llmVocabSize, m.codebookSize],
    });
    ++nfe;
    const ratio = (s + 1) / o.steps;
    temperature *= 1 - ratio;  // compounds, as the reference reassigns it every step
    codes = new Int32Array(B * N);
    let maskedTotal = 0;
    for (let b = 0; b < B; ++b) {
      const confidence = new Float64Array(N);
      let unknown = 0;
      for (let i = 0; i < N; ++i) {
        const tok = ids[b * L + imageStart + i], known = tok !== m.maskId;
        codes[b * N + i] = known ? tok - m.llmVocabSize : x0[b * N + i];
        unknown += known ? 0 : 1;
        const logp = known ? LOG_FLT_MAX : clampLog(conf[b * N + i]);
        confidence[i] = o.deterministic ? logp : logp + temperature * gumbel(noise());
      }
      const len = maskLen(s, o.steps, N, unknown);
      const cut = Float64Array.from(confidence).sort()[len];
      for (let i = 0; i < N; ++i) {
        const masked = confidence[i] < cut;
        maskedTotal += masked ? 1 : 0;
        ids[b * L + imageStart + i] = masked ? m.maskId : m.llmVocabSize + codes[b * N + i];
      }
    }
    yield { step: s, codes: codes.slice(), masked: maskedTotal / B };
  }
  return { codes, B, N, nfe, finishReason: 'length' };
}
