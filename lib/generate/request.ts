// One generation request's bookkeeping, independent of how it is batched: options, seed, the
// streaming detokenizer, stop strings, the repetition-penalty window and the finish rule.
import { randomInt } from 'crypto';

import { MambakitError } from '../errors';
import type { SampleOptions } from '../ops';
import type { Tokenizer } from '../tokenizer';
import { StopMatcher } from './stop';
import type { TopLogprob } from './top-logprobs';

export interface GenerateOptions extends SampleOptions {
  /** Most tokens to generate (default 128). */
  maxTokens?: number;
  /** Same seed and options → same tokens on the same device, alone or batched. Default: random. */
  seed?: number;
  /** Generation ends before any of these strings; the string is not emitted. */
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Mixture-of-Mamba: the modality (id or name) of the prompt and the generated tokens. */
  modality?: number | string;
  /**
   * Also return, on every chunk, this many most likely tokens under the sampler's distribution with
   * their log-probabilities (`GenerateChunk.topLogprobs`; 0 = off, the default; at most 20). Costs a
   * copy of the request's logits row to the host per token.
   */
  topLogprobs?: number;
  /** An attached editor set (model.loadEditors) that edits this request; others in the same batch may use others. */
  editors?: string;
}

export interface GenerateChunk {
  text: string;
  tokenId: number;
  logprob: number;
  /** With `topLogprobs`: the most likely tokens of this step, most likely first (ties: lower id). */
  topLogprobs?: TopLogprob[];
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

export class Request {
  readonly promptIds: number[];
  readonly seed: number;
  readonly maxTokens: number;
  readonly history: number[];
  readonly tokens: number[] = [];
  step = 0;
  text = '';
  finishReason: FinishReason | null = null;
  readonly #decoder;
  readonly #stops: StopMatcher;
  readonly #eos: number | null;

  constructor(tokenizer: Tokenizer | null, prompt: string | readonly number[], readonly opts: GenerateOptions) {
    const bad = (name: string, v: unknown, want: string): never => {
      throw new MambakitError('E_ARG', `generate: ${name} must be ${want}, got ${String(v)}`);
    };
    if (opts.maxTokens !== undefined && !(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 1)) bad('maxTokens', opts.maxTokens, 'an integer ≥ 1');
    if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0 && opts.seed < 2 ** 32)) bad('seed', opts.seed, 'an integer in [0, 2^32)');
    if (opts.topLogprobs !== undefined && !(Number.isInteger(opts.topLogprobs) && opts.topLogprobs >= 0 && opts.topLogprobs <= 20)) bad('topLogprobs', opts.topLogprobs, 'an integer in [0, 20]');
    if (opts.stop !== undefined && !(Array.isArray(opts.stop) && opts.stop.every((s) => typeof s === 'string'))) bad('stop', opts.stop, 'an array of strings');
    if (opts.editors !== undefined && typeof opts.editors !== 'string') bad('editors', opts.editors, 'the name of an attached editor set');
    if (typeof prompt === 'string' && !tokenizer) throw new MambakitError('E_ARG', 'generate: this model has no tokenizer.json; pass token ids');
    this.promptIds = typeof prompt === 'string' ? (tokenizer as Tokenizer).encode(prompt) : Array.from(prompt);
    if (this.promptIds.length === 0) throw new MambakitError('E_ARG', 'generate: empty prompt');
    this.maxTokens = opts.maxTokens ?? 128;
    this.seed = opts.seed ?? randomInt(0, 2 ** 32);
    this.history = this.promptIds.slice(-PENALTY_WINDOW);
    this.#decoder = tokenizer?.streamDecoder({ context: this.promptIds }) ?? null; // keeps a leading space right
    this.#stops = new StopMatcher(opts.stop ?? []);
    this.#eos = tokenizer?.eosTokenId ?? null;
  }

  get usesPenalty(): boolean {
    return (this.opts.repetitionPenalty ?? 1) !== 1;
  }

  get aborted(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  /** Takes one sampled token; returns the chunk to emit (if any). Sets finishReason when done. */
  accept(id: number, logprob: number, topLogprobs?: TopLogprob[]): GenerateChunk | null {
    this.step++;
    if (id === this.#eos) {
      // EOS is not emitted; text still held back (a stop-string prefix, a partial character) is,
      // on a chunk carrying the EOS id
      this.finishReason = 'stop';
      const tail = this.#drain(this.#decoder ? this.#decoder.flush() : '');
      return tail ? { text: tail, tokenId: id, logprob, ...(topLogprobs && { topLogprobs }) } : null;
    }
    this.tokens.push(id);
    this.history.push(id);
    if (this.history.length > PENALTY_WINDOW) this.history.shift();
    const last = this.tokens.length >= this.maxTokens;
    let piece = this.#decoder ? this.#decoder.push(id) : '';
    if (last && this.#decoder) piece += this.#decoder.flush();
    const r = this.#stops.push(piece);
    const out = r.text + (last && !r.stopped ? this.#stops.flush() : '');
    this.text += out;
    if (r.stopped) this.finishReason = 'stop';
    else if (last) this.finishReason = 'length';
    return { text: out, tokenId: id, logprob, ...(topLogprobs && { topLogprobs }) };
  }

  #drain(piece: string): string {
    const r = this.#stops.push(piece);
    const tail = r.text + (r.stopped ? '' : this.#stops.flush());
    this.text += tail;
    return tail;
  }

  result(): GenerateResult {
    return {
      text: this.text, tokens: this.tokens, finishReason: this.finishReason ?? 'abort',
      usage: { promptTokens: this.promptIds.length, completionTokens: this.tokens.length },
    };
  }
}
