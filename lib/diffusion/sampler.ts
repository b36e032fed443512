// LLaDA's masked-diffusion sampler over any Denoiser (a bidirectional LM that returns logits for a span of
// positions), batched, as an async iterator of steps.
//
// Exact mode follows ML-GSAI/LLaDA generate.py `generate` (and Gen-Verse/MMaDA models/modeling_mmada.py
// `mmu_generate` for the padding bias): the prompt then genLength masks; semi-autoregressive blocks; per
// block steps / blocks steps committing the linear schedule's counts of the most confident predictions
// inside the block; guidance with the prompt masked. The options `cache` and `threshold` follow NVlabs/
// Fast-dLLM llada/generate.py (generate_with_prefix_cache, generate_with_dual_cache, get_transfer_index),
// extended to batches: each block starts with a full forward that fills the K/V cache, then reruns the
// block and everything after it ('prefix') or only the block ('dual') against the cache until the block
// has no mask left. What differs from the references, by design: only the current block's logits are
// computed (the references compute every position's and discard all but the block's), which changes no
// decision.
import { MambakitError } from '../errors';
import type { EditedRow } from '../editors/registry';
import type { ResolvedDiffusionOptions } from './options';
import { numTransferTokens } from './options';
import { aboveThreshold, topK } from './pick';

/** A K/V cache of `rows` sequences (one slot each). */
export interface DenoiserCache {
  dispose(): void;
}

/** One forward of a Denoiser: tokens of positions [offset, offset + n) of each row, keys [0, keys) attended. */
export interface DenoiserCall {
  /** i32 [rows, n] */
  ids: Int32Array;
  rows: number;
  n: number;
  offset: number;
  keys: number;
  /** Keys of every position: written at [offset, offset + n), read at [0, keys). Null: offset 0, keys = n. */
  cache: DenoiserCache | null;
  /** f32 [rows, keys] added to the attention scores (−Infinity: padding), or null. */
  keyBias: Float32Array | null;
  /** Logits for positions [offset + logitsFrom, … + logitsCount) of each row. */
  logitsFrom: number;
  logitsCount: number;
  /** Editor sets of the call's rows (lib/editors), or absent. */
  editors?: readonly EditedRow[];
}

/**
 * The per-position decisions of one step over the call's logits viewed as [rows·logitsCount, V] (row r, block
 * position j → r·logitsCount + j): csrc/core/denoise.h, in float64, with counter-based draws (seed, step).
 */
export interface PickRequest {
  /** Logits rows to decide (the masked positions). */
  positions: Int32Array;
  /** Guidance: rows [B, 2B) of the call are the unconditional twins of rows [0, B). */
  guided: boolean;
  cfgScale: number;
  temperature: number;
  random: boolean;
  seed: number;
  step: number;
  /** Decide among logits columns [from, from + count) only (x0 counted from `from`). */
  columns?: readonly [number, number];
}

export interface Denoiser {
  /** Columns of the logits. */
  readonly logitsWidth: number;
  readonly maskId: number;
  /** Longest sequence (prompt + genLength). */
  readonly maxPositions: number;
  newCache(rows: number, context: number): DenoiserCache;
  /** One forward and the picks at `pick.positions`: x0 and the confidence of each. */
  predict(call: DenoiserCall, pick: PickRequest): Promise<{ x0: Int32Array; conf: Float64Array }>;
}

/** Prompts of one batch, left-padded to P: ids [B, P] and attention 1 (token) / 0 (padding), or null when none is padded. */
export interface PromptBatch {
  ids: Int32Array;
  B: number;
  P: number;
  attention: Uint8Array | null;
}

export interface DiffusionStep {
  /** Block index and step within the block (0-based). */
  block: number;
  step: number;
  /** Forward passes so far (one per step; guidance batches both halves into the same pass). */
  nfe: number;
  /** The sequences now, [B, P + genLength] (masks where nothing is committed yet); a copy. */
  ids: Int32Array;
  /** Positions committed this step, per row. */
  committed: number[][];
  /** Generated positions [0, final) of every row are final: their blocks are done and never change again. */
  final: number;
}

export interface DiffusionResult {
  /** [B, P + genLength] */
  ids: Int32Array;
  B: number;
  length: number;
  nfe: number;
  finishReason: 'length' | 'abort';
}

/** Left-pads token id lists into a PromptBatch (pad ids never attended to). */
export function padPrompts(prompts: readonly (readonly number[] | Int32Array)[], padId: number, maskId: number): PromptBatch {
  if (prompts.length < 1) throw new MambakitError('E_ARG', 'diffusion: no prompts');
  const B = prompts.length, P = Math.max(...prompts.map((p) => p.length));
  if (P < 1) throw new MambakitError('E_ARG', 'diffusion: empty prompt');
  const ids = new Int32Array(B * P).fill(padId);
  const attention = new Uint8Array(B * P);
  prompts.forEach((p, b) => {
    const pad = P - p.length;
    for (let t = 0; t < p.length; ++t) {
      const id = p[t];
      if (id === maskId) throw new MambakitError('E_ARG', `diffusion: prompt ${b} holds the mask token ${maskId} at position ${t}`);
      ids[b * P + pad + t] = id;
      attention[b * P + pad + t] = 1;
    }
  });
  return { ids, B, P, attention: attention.every((a) => a === 1) ? null : attention };
}

function checkPrompts(den: Denoiser, pb: PromptBatch, genLength: number): void {
  const L = pb.P + genLength;
  if (L > den.maxPositions)
    throw new MambakitError('E_ARG', `diffusion: prompt (${pb.P}) + genLength (${genLength}) = ${L} positions, beyond the model's ${den.maxPositions}`);
  const V = den.logitsWidth;
  for (let i = 0; i < pb.ids.length; ++i) {
    const id = pb.ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new MambakitError('E_ARG', `diffusion: token id ${id} outside [0, ${V})`);
    if (id === den.maskId && (!pb.attention || pb.attention[i]))
      throw new MambakitError('E_ARG', `diffusion: prompt ${Math.floor(i / pb.P)} holds the mask token ${den.maskId}`);
  }
}

/**
 * Denoises genLength masks after each prompt, yielding every step; returns the sequences. Aborting (o.signal)
 * ends after the step in flight with finishReason 'abort'; the cache is freed on every exit.
 */
export async function* diffuse(den: Denoiser, pb: PromptBatch, o: ResolvedDiffusionOptions): AsyncGenerator<DiffusionStep, DiffusionResult> {
  checkPrompts(den, pb, o.genLength);
  const { B, P } = pb, L = P + o.genLength, mask = den.maskId;
  const guided = o.cfgScale > 0, R = guided ? 2 * B : B;
  const x = new Int32Array(B * L).fill(mask);
  for (let b = 0; b < B; ++b) x.set(pb.ids.subarray(b * P, (b + 1) * P), b * L);
  // padding: −∞ on pad keys, for every row (the unconditional rows repeat the attention mask, as LLaDA does)
  let bias: Float32Array | null = null;
  if (pb.attention) {
    bias = new Float32Array(R * L);
    for (let r = 0; r < R; ++r)
      for (let t = 0; t < P; ++t) if (!pb.attention[(r % B) * P + t]) bias[r * L + t] = -Infinity;
  }
  const blocks = o.genLength / o.blockLength, perBlock = o.steps / blocks, bl = o.blockLength;
  const cache = o.cache === 'none' ? null : den.newCache(R, L);
  // rows [0, B): the sequences; [B, 2B): the same with the prompt masked (guidance)
  const rowsIn = (from: number, to: number): Int32Array => {
    const n = to - from, ids = new Int32Array(R * n);
    for (let r = 0; r < R; ++r) {
      ids.set(x.subarray((r % B) * L + from, (r % B) * L + to), r * n);
      if (r >= B) for (let t = from; t < Math.min(to, P); ++t) ids[r * n + t - from] = mask;
    }
    return ids;
  };
  // editor sets per sequence (not the unconditional twins): positions count from each prompt's start
  const sets = typeof o.editors === 'string' ? Array.from({ length: B }, () => o.editors as string) : o.editors;
  if (sets && sets.length !== B) throw new MambakitError('E_SHAPE', `diffusion: editors names ${sets.length} sets for ${B} prompts`);
  const starts = Array.from({ length: B }, (_, b) => (pb.attention ? pb.attention.subarray(b * P, (b + 1) * P).indexOf(1) : 0));
  const editorRows = (from: number, to: number): EditedRow[] | undefined => sets?.map((set, b) => {
    const n = to - from, start = starts[b];
    return { set, offset: b * n + start - from, length: L - start, promptLength: P - start, window: [b * n, (b + 1) * n] as const };
  });
  let nfe = 0;
  try {
    for (let blk = 0; blk < blocks; ++blk) {
      const bs = P + blk * bl, be = bs + bl;
      const counts = Array.from({ length: B }, (_, b) => {
        let m = 0;
        for (let t = bs; t < be; ++t) m += x[b * L + t] === mask ? 1 : 0;
        return numTransferTokens(m, perBlock);
      });
      for (let i = 0; ; ++i) {
        if (o.signal?.aborted) return { ids: x, B, length: L, nfe, finishReason: 'abort' };
        // the first step of a block (and every step without a cache) runs the whole sequence
        const full = !cache || i === 0;
        const from = full ? 0 : bs, to = full || o.cache === 'prefix' ? L : be;
        // the masked positions of the block, row by row
        const positions: number[] = [];
        for (let b = 0; b < B; ++b) for (let j = 0; j < bl; ++j) if (x[b * L + bs + j] === mask) positions.push(b * bl + j);
        const { x0, conf } = await den.predict({
          ids: rowsIn(from, to), rows: R, n: to - from, offset: from, keys: L, cache, keyBias: bias,
          logitsFrom: bs - from, logitsCount: bl, editors: editorRows(from, to),
        }, {
          positions: Int32Array.from(positions), guided, cfgScale: o.cfgScale, temperature: o.temperature,
          random: o.remasking === 'random', seed: o.seed, step: nfe,
        });
        ++nfe;
        const committed: number[][] = [];
        let left = 0;
        for (let b = 0, k = 0; b < B; ++b) {
          const c = new Float64Array(bl).fill(-Infinity), pred = new Int32Array(bl);  // −∞: not masked, never chosen
          for (; k < positions.length && positions[k] < (b + 1) * bl; ++k) {
            c[positions[k] - b * bl] = conf[k];
            pred[positions[k] - b * bl] = x0[k];
          }
          const chosen = o.threshold !== null ? aboveThreshold(c, o.threshold) : topK(c, i < perBlock ? counts[b][i] : 0);
          for (const j of chosen) x[b * L + bs + j] = pred[j];
          committed.push(chosen.map((j) => bs + j).sort((p, q) => p - q));
          for (let j = 0; j < bl; ++j) left += x[b * L + bs + j] === mask ? 1 : 0;
        }
        const last = left === 0 || (o.threshold === null && i + 1 >= perBlock);
        yield { block: blk, step: i, nfe, ids: x.slice(), committed, final: (last ? be : bs) - P };
        if (last) break;
      }
    }
    return { ids: x, B, length: L, nfe, finishReason: 'length' };
  } finally {
    cache?.dispose();
  }
}
