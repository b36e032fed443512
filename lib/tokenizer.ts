// Tokenization for checkpoint directories: tokenizer.json (+ tokenizer_config.json) through
// @huggingface/tokenizers (pure JS, offline), and an incremental decoder for streaming generation.
import * as fs from 'fs';
import * as path from 'path';

import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';

import { MambakitError } from './errors';

type JsonRecord = Record<string, unknown>;

const isRecord = (v: unknown): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v);

/** U+FFFD: what the UTF-8 decoder yields for an incomplete byte sequence. */
const REPLACEMENT = '\uFFFD';

/** How many already-emitted tokens a StreamDecoder seeds its window with from a prompt. */
const CONTEXT_TOKENS = 5;

export interface DecodeOptions {
  /** Drop special tokens (bos/eos/pad, …) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

export interface StreamDecoderOptions extends DecodeOptions {
  /**
   * Ids already in the sequence before the first pushed id (the prompt). Its last few tokens are kept as
   * decoding context so that the first pushed token decodes as it would mid-sequence (a sentencepiece
   * "▁" decoder strips the leading space of the first token of a string); they are never emitted.
   */
  context?: readonly number[];
}

/** A token given in tokenizer_config.json either as a string or as an AddedToken object `{ content }`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isRecord(v) && typeof v.content === 'string') return v.content;
  return null;
}

/**
 * Incremental detokenization. Keeps the ids since the last point where the text decoded cleanly and
 * decodes a window that starts a little before it (prefix offset) and the window up to the read offset;
 * only text beyond the latter is emitted, and nothing while the decoded text ends in U+FFFD (a multi-byte
 * character split across byte-level tokens). `flush()` emits whatever is still held back.
 */
export class StreamDecoder {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;
  private readonly tok: Tokenizer;
  private readonly opts: DecodeOptions;

  /** @internal — use `Tokenizer.streamDecoder()`. */
  constructor(tok: Tokenizer, opts: StreamDecoderOptions = {}) {
    this.tok = tok;
    this.opts = { skipSpecialTokens: opts.skipSpecialTokens ?? false };
    const context = opts.context ?? [];
    tok.checkIds(context, 'StreamDecoder context');
    this.ids = context.slice(Math.max(0, context.length - CONTEXT_TOKENS));
    this.readOffset = this.ids.length;
  }

  /** Adds one generated token; returns the text that became final with it (often '', never half a character). */
  push(id: number): string {
    this.tok.checkIds([id], 'StreamDecoder.push');
    this.ids.push(id);
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tok.decode(this.ids.slice(this.prefixOffset), this.opts);
    if (full.length <= prefix.length || full.endsWith(REPLACEMENT)) return '';
    const out = full.slice(prefix.length);
    // The window now starts at what was the read offset; drop ids no later decode will look at.
    const drop = this.readOffset;
    this.ids = this.ids.slice(drop);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    return out;
  }

  /** Emits whatever is held back (an incomplete character decodes to U+FFFD here) and resets the decoder. */
  flush(): string {
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tok.decode(this.ids.slice(this.prefixOffset), this.opts);
    const out = full.length > prefix.length ? full.slice(prefix.length) : '';
    this.ids = this.ids.slice(this.readOffset);
    if (this.ids.length > CONTEXT_TOKENS) this.ids = this.ids.slice(this.ids.length - CONTEXT_TOKENS);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    return out;
  }
}

export class Tokenizer {
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  /** One past the largest token id (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** Whether `encode` puts `bosTokenId` first (tokenizer_config.json `add_bos_token`). */
  readonly addBosToken: boolean;
  /** Whether `encode` puts `eosTokenId` last (tokenizer_config.json `add_eos_token`). */
  readonly addEosToken: boolean;
  private readonly hf: HFTokenizer;

  /** @internal — use `loadTokenizer(dir)`. */
  constructor(hf: HFTokenizer, config: JsonRecord) {
    this.hf = hf;
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const idOf = (v: unknown): number | null => {
      const content = tokenContent(v);
      if (content === null) return null;
      return hf.token_to_id(content) ?? null;
    };
    this.bosTokenId = idOf(config.bos_token);
    this.eosTokenId = idOf(config.eos_token);
    this.addBosToken = config.add_bos_token === true && this.bosTokenId !== null;
    this.addEosToken = config.add_eos_token === true && this.eosTokenId !== null;
  }

  /** Token ids of `text`, with bos/eos added as tokenizer_config.json asks (and the post-processor, if any). */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new MambakitError('E_ARG', `Tokenizer.encode: text must be a string, got ${typeof text}`);
    const { ids, tokens } = this.hf.encode(text, { add_special_tokens: true });
    const out: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id: unknown = ids[i];
      if (typeof id !== 'number') {
        throw new MambakitError('E_ARG', `Tokenizer.encode: token ${JSON.stringify(tokens[i])} is not in the vocabulary and the tokenizer has no unknown token`);
      }
      out.push(id);
    }
    if (this.addBosToken && this.bosTokenId !== null && out[0] !== this.bosTokenId) out.unshift(this.bosTokenId);
    if (this.addEosToken && this.eosTokenId !== null && out[out.length - 1] !== this.eosTokenId) out.push(this.eosTokenId);
    return out;
  }

  /** Text of `ids`. Byte sequences that are not complete UTF-8 decode to U+FFFD. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    this.checkIds(ids, 'Tokenizer.decode');
    if (ids.length === 0) return '';
    return this.hf.decode(ids.slice(), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** Incremental decoder for generated tokens (see StreamDecoder). */
  streamDecoder(opts: StreamDecoderOptions = {}): StreamDecoder {
    return new StreamDecoder(this, opts);
  }

  /** @internal */
  checkIds(ids: readonly number[], where: string): void {
    if (!Array.isArray(ids)) throw new MambakitError('E_ARG', `${where}: ids must be an array of token ids`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new MambakitError('E_ARG', `${where}: token id ${String(id)} is not in the vocabulary (size ${this.vocabSize})`);
      }
    }
  }
}

async function readJson(file: string, what: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MambakitError('E_FORMAT', `${file}: cannot read ${what}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new MambakitError('E_FORMAT', `${file}: invalid JSON in ${what}: ${(e as Error).message}`);
  }
}

/**
 * Reads `tokenizer.json` (and `tokenizer_config.json` when present: bos/eos tokens, `add_bos_token`,
 * `add_eos_token`, `clean_up_tokenization_spaces`) from a checkpoint directory. Nothing is fetched.
 * Resolves to null when the directory has no tokenizer.json; rejects with E_FORMAT naming the file when
 * either file is unreadable or invalid.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer | null> {
  if (typeof dir !== 'string') throw new MambakitError('E_ARG', `loadTokenizer: dir must be a string, got ${typeof dir}`);
  const root = path.resolve(dir);
  const tokFile = path.join(root, 'tokenizer.json');
  const cfgFile = path.join(root, 'tokenizer_config.json');
  const tokJson = await readJson(tokFile, 'tokenizer');
  if (tokJson === undefined) return null;
  if (!isRecord(tokJson) || !isRecord(tokJson.model)) {
    throw new MambakitError('E_FORMAT', `${tokFile}: not a tokenizer.json (expected an object with a "model" object)`);
  }
  if (tokJson.added_tokens !== undefined && !Array.isArray(tokJson.added_tokens)) {
    throw new MambakitError('E_FORMAT', `${tokFile}: "added_tokens" must be an array`);
  }
  const cfgJson = await readJson(cfgFile, 'tokenizer config');
  if (cfgJson !== undefined && !isRecord(cfgJson)) {
    throw new MambakitError('E_FORMAT', `${cfgFile}: tokenizer config must be a JSON object`);
  }
  const config: JsonRecord = { ...(cfgJson ?? {}) };
  // The Rust tokenizers library does no clean-up on decode and transformers no longer does by default:
  // keep decode(encode(text)) === text unless the config asks otherwise.
  config.clean_up_tokenization_spaces = config.clean_up_tokenization_spaces === true;
  const spec: JsonRecord = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...tokJson,
    added_tokens: tokJson.added_tokens ?? [],
  };
  let hf: HFTokenizer;
  try {
    hf = new HFTokenizer(spec, config);
  } catch (e) {
    throw new MambakitError('E_FORMAT', `${tokFile}: unsupported or invalid tokenizer: ${(e as Error).message}`);
  }
  try {
    return new Tokenizer(hf, config);
  } catch (e) {
    if (e instanceof MambakitError) throw e;
    throw new MambakitError('E_FORMAT', `${tokFile}: invalid tokenizer: ${(e as Error).message}`);
  }
}
