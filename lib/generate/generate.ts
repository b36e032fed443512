// Text generation for one request: prefill the prompt, then sample and step token by token,
// streaming text that never splits a UTF-8 character and never shows a stop string.
import { randomInt } from 'crypto';

import { MambakitError } from '../errors';
import type { MambaLM } from '../models/mamba';
import { SampleOptions, sample } from '../ops';
import { Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import { StopMatcher } from './stop';

export interface GenerateOptions extends SampleOptions {
  /** Most tokens to generate (default 128). */
  maxTokens?: number;
  /** Same seed and options → same tokens on the same device. Default: random. */
  seed?: number;
  /** Generation ends before any of these strings; the string is not emitted. */
  stop?: readonly string[];
  signal?: AbortSignal;
}

export interface GenerateChunk {
  text: string;
  tokenId: number;
  logprob: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerateResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number };
}

// The repetition penalty looks at this many most recent tokens (prompt and generated).
const PENALTY_WINDOW = 1024;

function checkOptions(o: GenerateOptions): void {
  const bad = (name: string, v: unknown, want: string): never => {
    throw new MambakitError('E_ARG', `generate: ${name} must be ${want}, got ${String(v)}`);
  };
  if (o.maxTokens !== undefined && !(Number.isInteger(o.maxTokens) && o.maxTokens >= 1)) bad('maxTokens', o.maxTokens, 'an integer ≥ 1');
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32)) bad('seed', o.seed, 'an integer in [0, 2^32)');
  if (o.stop !== undefined && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string'))) bad('stop', o.stop, 'an array of strings');
}

/**
 * Streams chunks for `prompt` (text, or token ids); the generator's return value is the summary.
 * Ends on the tokenizer's EOS token, a stop string, maxTokens or the AbortSignal.
 */
export async function* generateText(model: MambaLM, tokenizer: Tokenizer | null, prompt: string | readonly number[],
  opts: GenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult> {
  checkOptions(opts);
  if (typeof prompt === 'string' && !tokenizer) throw new MambakitError('E_ARG', 'generate: this model has no tokenizer.json; pass token ids');
  const promptIds = typeof prompt === 'string' ? (tokenizer as Tokenizer).encode(prompt) : Array.from(prompt);
  if (promptIds.length === 0) throw new MambakitError('E_ARG', 'generate: empty prompt');
  const maxTokens = opts.maxTokens ?? 128;
  const seed = opts.seed ?? randomInt(0, 2 ** 32);
  const usePenalty = (opts.repetitionPenalty ?? 1) !== 1;
  const decoder = tokenizer?.streamDecoder({ context: promptIds }) ?? null; // the prompt keeps a leading space right
  const stops = new StopMatcher(opts.stop ?? []);
  const eos = tokenizer?.eosTokenId ?? null;
  const history = promptIds.slice(-PENALTY_WINDOW);
  const tokens: number[] = [];
  let text = '';
  let finishReason: FinishReason = 'length';

  const state = model.newState(1);
  let logits: Tensor | null = null;
  try {
    if (opts.signal?.aborted) return { text, tokens, finishReason: 'abort', usage: { promptTokens: promptIds.length, completionTokens: 0 } };
    logits = await model.prefill([promptIds], state);
    for (let step = 0; step < maxTokens; ++step) {
      if (opts.signal?.aborted) { finishReason = 'abort'; break; }
      const prev = usePenalty ? Tensor.from(Int32Array.from(history), [1, history.length], { device: model.device }) : undefined;
      const { ids, logprobs } = await sample(logits, { ...opts, prev, seed, step });
      prev?.dispose();
      const id = (await ids.data())[0];
      const logprob = (await logprobs.data())[0];
      ids.dispose();
      logprobs.dispose();
      const last = step + 1 === maxTokens;
      if (id === eos) {
        // EOS is not emitted; text still held back (a stop-string prefix, a partial character) is,
        // on a chunk carrying the EOS id
        finishReason = 'stop';
        const rest = stops.push(decoder ? decoder.flush() : '');
        const tail = rest.text + (rest.stopped ? '' : stops.flush());
        if (tail) {
          text += tail;
          yield { text: tail, tokenId: id, logprob };
        }
        break;
      }
      tokens.push(id);
      history.push(id);
      if (history.length > PENALTY_WINDOW) history.shift();
      let piece = decoder ? decoder.push(id) : '';
      if (last && decoder) piece += decoder.flush();
      const r = stops.push(piece);
      const out = r.text + (last && !r.stopped ? stops.flush() : '');
      text += out;
      yield { text: out, tokenId: id, logprob };
      if (r.stopped) { finishReason = 'stop'; break; }
      if (!last) {
        logits.dispose();
        logits = await model.step([id], state);
      }
    }
    return { text, tokens, finishReason, usage: { promptTokens: promptIds.length, completionTokens: tokens.length } };
  } finally {
    logits?.dispose();
    state.dispose();
  }
}

/** Runs generateText to the end and returns the summary. */
export async function completeText(model: MambaLM, tokenizer: Tokenizer | null, prompt: string | readonly number[],
  opts: GenerateOptions = {}): Promise<GenerateResult> {
  const it = generateText(model, tokenizer, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
