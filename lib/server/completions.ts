// POST /v1/completions in the OpenAI shape: validation, the OpenAI ↔ mambakit option mapping, and the
// response bodies (one JSON, or server-sent events when `stream: true`).
import { randomUUID } from 'crypto';

import type { FastifyReply } from 'fastify';

import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import type { Tokenizer } from '../tokenizer';
import { SseLimits, guardedWriter, writeEventStreamHead } from './production';

export interface CompletionRequest {
  prompt: string | number[];
  model?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  /** OpenAI's legacy field: the log-probabilities of the chosen tokens and of this many alternatives (0–5; 0 = none). */
  logprobs?: number | null;
  /** mambakit extension for Mixture-of-Mamba models: the modality (id or name) of the request. */
  modality?: string | number;
  /** mambakit extension: the attached editor set (`mambakit serve --editors NAME=DIR`) that edits this request. */
  editors?: string;
}

/** JSON schema of the body (fastify validates it before the handler runs: malformed → 400). */
export function completionSchema(maxTokens: number): Record<string, unknown> {
  return {
    type: 'object',
    required: ['prompt'],
    additionalProperties: false,
    properties: {
      prompt: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } }] },
      model: { type: 'string' },
      max_tokens: { type: 'integer', minimum: 1, maximum: maxTokens },
      temperature: { type: 'number', minimum: 0, maximum: 100 },
      top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      top_k: { type: 'integer', minimum: 0 },
      min_p: { type: 'number', minimum: 0, maximum: 1 },
      repetition_penalty: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
      seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
      stop: { anyOf: [{ type: 'string' }, { type: 'array', maxItems: 16, items: { type: 'string' } }] },
      stream: { type: 'boolean' },
      logprobs: { anyOf: [{ type: 'integer', minimum: 0, maximum: 5 }, { type: 'null' }] },
      modality: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 0 }] },
      editors: { type: 'string', minLength: 1, maxLength: 64 },
    },
  };
}

export function toGenerateOptions(b: CompletionRequest, signal: AbortSignal): GenerateOptions {
  return {
    maxTokens: b.max_tokens ?? 16, // OpenAI's default
    temperature: b.temperature ?? 1,
    topP: b.top_p, topK: b.top_k, minP: b.min_p, repetitionPenalty: b.repetition_penalty, seed: b.seed,
    stop: b.stop === undefined ? undefined : Array.isArray(b.stop) ? b.stop : [b.stop],
    signal,
    modality: b.modality,
    ...(b.editors !== undefined && { editors: b.editors }),
    ...(b.logprobs ? { topLogprobs: b.logprobs } : {}),
  };
}

export interface Envelope { id: string; created: number; model: string }

export function envelope(model: string): Envelope {
  return { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model };
}

/** OpenAI's legacy `logprobs` object (plus `token_ids`, a mambakit extension). */
export interface Logprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
  token_ids: number[];
}

/**
 * Builds the `logprobs` of a completion from its chunks: one entry per chunk (per sampled token that
 * was emitted), `tokens` as each token's own text, `text_offset` where the token's text starts in the
 * completion, `top_logprobs` the alternatives (inserted most likely first; a JSON object's key order is
 * not reliable: JS parsers list integer-like keys such as "3" first), plus the chosen token when it is
 * not among them (so up to n + 1 entries, as OpenAI returns).
 */
export class LogprobsBuilder {
  readonly all: Logprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [], token_ids: [] };
  #offset = 0;
  constructor(private readonly tokenizer: Tokenizer | null) {}

  #token(id: number): string {
    return this.tokenizer ? this.tokenizer.decode([id]) : `token_id:${id}`;
  }

  /** Adds a chunk; returns its entry alone (for a streamed event). */
  add(c: GenerateChunk): Logprobs {
    const top: Record<string, number> = {};
    for (const t of c.topLogprobs ?? []) {
      const k = this.#token(t.tokenId);
      if (!(k in top)) top[k] = t.logprob;
    }
    const token = this.#token(c.tokenId);
    if (!(token in top)) top[token] = c.logprob;
    const one: Logprobs = { tokens: [token], token_logprobs: [c.logprob], top_logprobs: [top], text_offset: [this.#offset], token_ids: [c.tokenId] };
    this.#offset += c.text.length;
    for (const k of Object.keys(one) as (keyof Logprobs)[]) (this.all[k] as unknown[]).push(one[k][0]);
    return one;
  }
}

export function completionBody(env: Envelope, r: GenerateResult, logprobs: Logprobs | null = null): Record<string, unknown> {
  return {
    ...env, object: 'text_completion',
    choices: [{ index: 0, text: r.text, finish_reason: r.finishReason, logprobs }],
    usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.promptTokens + r.usage.completionTokens },
  };
}

export function streamEvent(env: Envelope, text: string, finishReason: string | null, logprobs: Logprobs | null = null): string {
  const body = { ...env, object: 'text_completion', choices: [{ index: 0, text, finish_reason: finishReason, logprobs }] };
  return `data: ${JSON.stringify(body)}\n\n`;
}

/**
 * Answers with server-sent events: `produce` writes the events; an error after the headers went out is sent
 * as a final error event (the status is already 200); `data: [DONE]` ends a stream that completed. A
 * client that stops reading is cut off by `limits` (which aborts the request).
 */
export async function sendEvents(reply: FastifyReply, limits: SseLimits, produce: (write: (event: string) => void) => Promise<void>): Promise<FastifyReply> {
  reply.hijack();
  writeEventStreamHead(reply);
  const out = guardedWriter(reply.raw, limits);
  try {
    await produce(out.write);
    out.write('data: [DONE]\n\n');
  } catch (e) {
    out.write(`data: ${JSON.stringify({ error: { message: (e as Error).message, type: 'server_error' } })}\n\n`);
  } finally {
    out.done();
    reply.raw.end();
  }
  return reply;
}
