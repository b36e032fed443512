// POST /v1/completions in the OpenAI shape: validation, the OpenAI ↔ mambakit option mapping, and the
// response bodies (one JSON, or server-sent events when `stream: true`).
import { randomUUID } from 'crypto';

import type { FastifyReply } from 'fastify';

import type { GenerateOptions, GenerateResult } from '../generate/request';

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
  /** mambakit extension for Mixture-of-Mamba models: the modality (id or name) of the request. */
  modality?: string | number;
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
      modality: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 0 }] },
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
  };
}

export interface Envelope { id: string; created: number; model: string }

export function envelope(model: string): Envelope {
  return { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model };
}

export function completionBody(env: Envelope, r: GenerateResult): Record<string, unknown> {
  return {
    ...env, object: 'text_completion',
    choices: [{ index: 0, text: r.text, finish_reason: r.finishReason, logprobs: null }],
    usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.promptTokens + r.usage.completionTokens },
  };
}

export function streamEvent(env: Envelope, text: string, finishReason: string | null): string {
  const body = { ...env, object: 'text_completion', choices: [{ index: 0, text, finish_reason: finishReason, logprobs: null }] };
  return `data: ${JSON.stringify(body)}\n\n`;
}

/**
 * Answers with server-sent events: `produce` writes the events; an error after the headers went out is sent
 * as a final error event (the status is already 200); `data: [DONE]` ends a stream that completed.
 */
export async function sendEvents(reply: FastifyReply, produce: (write: (event: string) => void) => Promise<void>): Promise<FastifyReply> {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  try {
    await produce((event) => reply.raw.write(event));
    reply.raw.write('data: [DONE]\n\n');
  } catch (e) {
    reply.raw.write(`data: ${JSON.stringify({ error: { message: (e as Error).message } })}\n\n`);
  } finally {
    reply.raw.end();
  }
  return reply;
}
