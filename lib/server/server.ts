// The HTTP server: POST /v1/completions (OpenAI shape, SSE streaming) and GET /health over one model
// with continuous batching (a diffusion LM: lib/server/diffusion.ts). A bounded queue answers 429 beyond its limit; a client that disconnects
// aborts its request (its state slot is freed at the next decode step).
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { MambakitError } from '../errors';
import type { DiffusionLM, LanguageModel } from '../models/interfaces';
import { serveDiffusion } from './diffusion';
import { CompletionRequest, completionBody, completionSchema, envelope, sendEvents, streamEvent, toGenerateOptions } from './completions';

export interface ServeOptions {
  /** Name reported in responses (default: the model directory's name). */
  modelName?: string;
  /** Sequences decoded together (default 32). */
  maxBatch?: number;
  /** Requests allowed to wait once every slot is busy; beyond it: 429 (default 64). */
  maxQueue?: number;
  /** Waiting requests prefilled between two decode steps while others run (see SchedulerOptions). */
  maxPrefillsPerStep?: number;
  /** Longest prompt accepted, in tokens (default 4096). */
  maxPromptTokens?: number;
  /** Largest max_tokens accepted (default 2048). */
  maxTokens?: number;
}

export function createServer(model: LanguageModel | DiffusionLM, opts: ServeOptions = {}): FastifyInstance {
  const name = opts.modelName ?? 'mamba';
  const maxQueue = opts.maxQueue ?? 64;
  const maxPrompt = opts.maxPromptTokens ?? 4096;
  // unknown fields and wrong types are errors (fastify's defaults strip and coerce them)
  const app = Fastify({ logger: false, bodyLimit: 1 << 20, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  app.setErrorHandler(errorHandler);
  if (model.kind === 'diffusion') {
    serveDiffusion(app, model, name, { maxQueue, maxPromptTokens: maxPrompt, maxTokens: opts.maxTokens ?? 2048 });
    return app;
  }
  model.configureBatching({ maxBatch: opts.maxBatch ?? 32, maxQueue, maxPrefillsPerStep: opts.maxPrefillsPerStep });

  app.get('/health', async () => ({ status: 'ok', model: name, device: model.device, dtype: model.dtype, ...model.load }));

  app.post<{ Body: CompletionRequest }>('/v1/completions', { schema: { body: completionSchema(opts.maxTokens ?? 2048) } }, async (req, reply) => {
    const b = req.body;
    const ids = typeof b.prompt === 'string' ? model.tokenizer?.encode(b.prompt) : b.prompt;
    if (!ids) return reply.code(400).send({ error: { message: 'this model has no tokenizer: send the prompt as token ids', type: 'invalid_request_error' } });
    if (ids.length > maxPrompt) return reply.code(400).send({ error: { message: `prompt is ${ids.length} tokens, the limit is ${maxPrompt}`, type: 'invalid_request_error' } });
    if (model.load.waiting >= model.load.freeSlots + maxQueue) return reply.code(429).send({ error: { message: `server busy: ${model.load.waiting} requests waiting`, type: 'rate_limit_error' } });
    const ac = new AbortController();
    // the client going away (before the answer is complete) aborts generation
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    const env = envelope(name);
    const it = model.generate(ids, toGenerateOptions(b, ac.signal));
    let r = await it.next(); // bad input (a token id out of range, a full queue) throws here: a 4xx
    if (!b.stream) {
      while (!r.done) r = await it.next();
      return completionBody(env, r.value);
    }
    return sendEvents(reply, async (write) => {
      while (!r.done) {
        write(streamEvent(env, r.value.text, null)); // one event per token, as OpenAI streams
        r = await it.next();
      }
      write(streamEvent(env, '', r.value.finishReason));
    });
  });

  return app;
}

function errorHandler(err: unknown, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = err as Error & { validation?: unknown; statusCode?: number; code?: string };
  const status = e.statusCode;
  if (e.validation || status === 400 || e instanceof SyntaxError)
    return reply.code(400).send({ error: { message: e.message, type: 'invalid_request_error' } });
  if (e instanceof MambakitError && e.code === 'E_ARG')
    return reply.code(/queue is full/.test(e.message) ? 429 : 400).send({ error: { message: e.message, type: 'invalid_request_error' } });
  return reply.code(status && status >= 400 ? status : 500).send({ error: { message: e.message, type: 'server_error' } });
}
