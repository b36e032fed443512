// Options of LLaDA's masked-diffusion sampler and their checks, and the per-step commit counts of its
// linear schedule (ML-GSAI/LLaDA generate.py, `get_num_transfer_tokens`).
import { MambakitError } from '../errors';

export type Remasking = 'low_confidence' | 'random';
/** 'none': every step reruns the whole sequence (the reference); 'prefix' / 'dual': Fast-dLLM's K/V caches. */
export type DiffusionCache = 'none' | 'prefix' | 'dual';

export interface DiffusionOptions {
  /** Tokens to generate after the prompt (default 128); a multiple of blockLength. */
  genLength?: number;
  /** Semi-autoregressive block length (default genLength: one block). */
  blockLength?: number;
  /** Denoising steps over all blocks (default genLength); a multiple of the number of blocks. */
  steps?: number;
  /** Which predictions to keep each step: the most confident ('low_confidence', default) or random ones. */
  remasking?: Remasking;
  /** Gumbel-noise temperature (default 0: argmax). */
  temperature?: number;
  /** Classifier-free guidance scale s ≥ 0: logits = un + (s + 1)·(cond − un), un with the prompt masked (default 0: off). */
  cfgScale?: number;
  /** K/V caching (Fast-dLLM): 'none' (default, exact), 'prefix' or 'dual'. */
  cache?: DiffusionCache;
  /** Confidence-threshold parallel commit (Fast-dLLM): every masked token of the block above it, at least the best one per step. In (0, 1]. */
  threshold?: number;
  /** Seed of the Gumbel noise and of random remasking (default random). */
  seed?: number;
  signal?: AbortSignal;
  /**
   * Attached editor set(s) (model.loadEditors): one for every prompt or one per prompt (null: none). An
   * editor edits its positions counted from the prompt's start ('all': the prompt and the generated
   * tokens) in every forward that holds them; the unconditional guidance rows are not edited.
   */
  editors?: string | readonly (string | null)[];
}

export interface ResolvedDiffusionOptions {
  genLength: number;
  blockLength: number;
  steps: number;
  remasking: Remasking;
  temperature: number;
  cfgScale: number;
  cache: DiffusionCache;
  threshold: number | null;
  seed: number;
  signal: AbortSignal | null;
  /** One set (or null) per prompt once the batch is known; a single name here applies to all. */
  editors: string | readonly (string | null)[] | null;
}

const bad = (msg: string): MambakitError => new MambakitError('E_ARG', `diffusion: ${msg}`);
const isInt = (v: unknown, lo: number): v is number => Number.isInteger(v) && (v as number) >= lo;

/** Fills defaults (call options over `defaults`, e.g. generation_config.json) and checks every rule. */
export function resolveDiffusionOptions(opts: DiffusionOptions, defaults: DiffusionOptions = {}): ResolvedDiffusionOptions {
  const o = { ...defaults, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as DiffusionOptions;
  const genLength = o.genLength ?? 128;
  if (!isInt(genLength, 1)) throw bad(`genLength must be an integer ≥ 1, got ${String(o.genLength)}`);
  const blockLength = o.blockLength ?? genLength;
  if (!isInt(blockLength, 1)) throw bad(`blockLength must be an integer ≥ 1, got ${String(o.blockLength)}`);
  if (genLength % blockLength !== 0) throw bad(`genLength ${genLength} is not a multiple of blockLength ${blockLength}`);
  const blocks = genLength / blockLength;
  const steps = o.steps ?? genLength;
  if (!isInt(steps, 1)) throw bad(`steps must be an integer ≥ 1, got ${String(o.steps)}`);
  if (steps % blocks !== 0)
    throw bad(`steps ${steps} is not divisible by the ${blocks} blocks (genLength / blockLength): every block gets steps / blocks steps`);
  const remasking = o.remasking ?? 'low_confidence';
  if (remasking !== 'low_confidence' && remasking !== 'random') throw bad(`remasking must be 'low_confidence' or 'random', got ${JSON.stringify(remasking)}`);
  const temperature = o.temperature ?? 0;
  if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) throw bad(`temperature must be a number ≥ 0, got ${String(o.temperature)}`);
  const cfgScale = o.cfgScale ?? 0;
  if (typeof cfgScale !== 'number' || !(cfgScale >= 0) || !Number.isFinite(cfgScale)) throw bad(`cfgScale must be a number ≥ 0, got ${String(o.cfgScale)}`);
  const cache = o.cache ?? 'none';
  if (cache !== 'none' && cache !== 'prefix' && cache !== 'dual') throw bad(`cache must be 'none', 'prefix' or 'dual', got ${JSON.stringify(cache)}`);
  const threshold = o.threshold ?? null;
  if (threshold !== null && !(typeof threshold === 'number' && threshold > 0 && threshold <= 1)) throw bad(`threshold must be in (0, 1], got ${String(o.threshold)}`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw bad(`seed must be an integer in [0, 2^32), got ${String(o.seed)}`);
  const editors = o.editors ?? null;
  if (editors !== null && !(typeof editors === 'string' || (Array.isArray(editors) && editors.every((e) => e === null || typeof e === 'string'))))
    throw bad('editors must be the name of an attached editor set, or one name (or null) per prompt');
  return { genLength, blockLength, steps, remasking, temperature, cfgScale, cache, threshold, seed, signal: o.signal ?? null, editors };
}

/**
 * Tokens to commit at each of `steps` steps for `masked` masked positions: ⌊masked / steps⌋ each, the first
 * masked mod steps steps one more (LLaDA's linear schedule: the same expected count every step).
 */
export function numTransferTokens(masked: number, steps: number): number[] {
  const base = Math.floor(masked / steps), rem = masked % steps;
  return Array.from({ length: steps }, (_, i) => base + (i < rem ? 1 : 0));
}
