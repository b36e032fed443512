// POST /v1/completions and GET /health for a language model with continuous batching. A bounded queue
// answers 429 beyond its limit; a client that disconnects aborts its request (its state slot is freed
// at the next decode step); the request loop feeds the generation metrics. What a prompt is comes from a
// CompletionPrompts (text or token ids by default; a VLM's adds its image, lib/server/vlm.ts).
import type { FastifyInstance } from 'fastify';

import { MambakitError } from '../errors';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import type { LanguageModel } from '../models/interfaces';
import { CompletionRequest, LogprobsBuilder, completionBody, completionSchema, envelope, sendEvents, streamEvent, toGenerateOptions } from './completions';
import type { RouteContext } from './server';
import { apiError } from './production';

/** A request's prompt: its length in tokens (the limit and usage count it) and how to generate from it. */
export interface CompletionPrompt {
  tokens: number;
  generate(opts: GenerateOptions): AsyncGenerator<GenerateChunk, GenerateResult>;
}

/** A request's body: the OpenAI fields and the extra ones of CompletionPrompts.properties (validated by their schema). */
export type CompletionBody = CompletionRequest & Record<string, unknown>;

/** How /v1/completions reads a request's prompt, with the body fields that come with it. */
export interface CompletionPrompts {
  /** JSON-schema properties of the extra body fields, and the body limit they need (default 1 MiB). */
  properties?: Record<string, unknown>;
  bodyLimit?: number;
  /** The request's prompt (cheap: heavy work belongs in generate); a MambakitError E_ARG / E_FORMAT / E_SHAPE is a 400. */
  read(b: CompletionBody): CompletionPrompt;
}

/** Text (the tokenizer's) or token ids. */
export function textPrompts(model: LanguageModel): CompletionPrompts {
  return {
    read: (b) => {
      const ids = typeof b.prompt === 'string' ? model.tokenizer?.encode(b.prompt) : b.prompt;
      if (!ids) throw new MambakitError('E_ARG', 'this model has no tokenizer: send the prompt as token ids');
      return { tokens: ids.length, generate: (o) => model.generate(ids, o) };
    },
  };
}

// A client's mistake in its request (an undecodable image, a bad prompt): 400, not 500.
const clientError = (e: unknown): e is MambakitError =>
  e instanceof MambakitError && (e.code === 'E_FORMAT' || (e.code === 'E_ARG' && !/queue is full/.test(e.message)));

export function serveLanguage(app: FastifyInstance, model: LanguageModel, ctx: RouteContext, prompts: CompletionPrompts = textPrompts(model)): void {
  const { name, metrics, inflight } = ctx;
  app.get('/health', async (_req, reply) => {
    reply.code(inflight.draining ? 503 : 200);
    return { status: inflight.draining ? 'draining' : 'ok', model: name, device: model.device, dtype: model.dtype, ...model.load };
  });

  const schema = completionSchema(ctx.maxTokens);
  const body = prompts.properties ? { ...schema, properties: { ...(schema.properties as Record<string, unknown>), ...prompts.properties } } : schema;
  app.post<{ Body: CompletionBody }>('/v1/completions', { schema: { body }, ...(prompts.bodyLimit && { bodyLimit: prompts.bodyLimit }) }, async (req, reply) => {
    const start = performance.now();
    const b = req.body;
    let prompt: CompletionPrompt;
    try {
      prompt = prompts.read(b);
    } catch (e) {
      if (clientError(e)) return reply.code(400).send(apiError(e.message, 'invalid_request_error'));
      throw e;
    }
    const promptTokens = prompt.tokens;
    if (promptTokens > ctx.maxPromptTokens) return reply.code(400).send(apiError(`prompt is ${promptTokens} tokens, the limit is ${ctx.maxPromptTokens}`, 'invalid_request_error'));
    if (model.load.waiting >= model.load.freeSlots + ctx.maxQueue) return reply.code(429).send(apiError(`server busy: ${model.load.waiting} requests waiting`, 'rate_limit_error'));
    const ac = new AbortController();
    // the client going away (before the answer is complete) aborts generation
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    const release = inflight.track(ac);
    const gen = metrics.generation(start);
    let completionTokens = 0, finishReason: string | null = null;
    try {
      const env = envelope(name);
      const lp = b.logprobs ? new LogprobsBuilder(model.tokenizer) : null;
      const it = prompt.generate(toGenerateOptions(b, ac.signal));
      let r: IteratorResult<GenerateChunk, GenerateResult>;
      try {
        r = await it.next(); // bad input (a token id out of range, an undecodable image, a full queue) throws here: a 4xx
      } catch (e) {
        if (clientError(e)) return reply.code(400).send(apiError(e.message, 'invalid_request_error'));
        throw e; // a full queue: 429 (errorHandler)
      }
      metrics.promptTokens.inc(promptTokens);
      if (!b.stream) {
        while (!r.done) {
          gen.token();
          lp?.add(r.value);
          r = await it.next();
        }
        ({ completionTokens } = r.value.usage);
        finishReason = r.value.finishReason;
        req.log.info({ prompt_tokens: promptTokens, completion_tokens: completionTokens, finish_reason: finishReason }, 'completion');
        return completionBody(env, r.value, lp?.all ?? null);
      }
      return await sendEvents(reply, ctx.sse, async (write) => {
        while (!r.done) {
          gen.token();
          write(streamEvent(env, r.value.text, null, lp?.add(r.value) ?? null)); // one event per token, as OpenAI streams
          r = await it.next();
        }
        ({ completionTokens } = r.value.usage);
        finishReason = r.value.finishReason;
        req.log.info({ prompt_tokens: promptTokens, completion_tokens: completionTokens, finish_reason: finishReason }, 'completion');
        write(streamEvent(env, '', r.value.finishReason));
      });
    } finally {
      gen.end(completionTokens, finishReason);
      release();
    }
  });
}
