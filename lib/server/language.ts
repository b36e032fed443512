// POST /v1/completions and GET /health for a language model with continuous batching. A bounded queue
// answers 429 beyond its limit; a client that disconnects aborts its request (its state slot is freed
// at the next decode step); the request loop feeds the generation metrics.
import type { FastifyInstance } from 'fastify';

import type { LanguageModel } from '../models/interfaces';
import { CompletionRequest, LogprobsBuilder, completionBody, completionSchema, envelope, sendEvents, streamEvent, toGenerateOptions } from './completions';
import type { RouteContext } from './server';
import { apiError } from './production';

export function serveLanguage(app: FastifyInstance, model: LanguageModel, ctx: RouteContext): void {
  const { name, metrics, inflight } = ctx;
  app.get('/health', async (_req, reply) => {
    reply.code(inflight.draining ? 503 : 200);
    return { status: inflight.draining ? 'draining' : 'ok', model: name, device: model.device, dtype: model.dtype, ...model.load };
  });

  app.post<{ Body: CompletionRequest }>('/v1/completions', { schema: { body: completionSchema(ctx.maxTokens) } }, async (req, reply) => {
    const start = performance.now();
    const b = req.body;
    const ids = typeof b.prompt === 'string' ? model.tokenizer?.encode(b.prompt) : b.prompt;
    if (!ids) return reply.code(400).send(apiError('this model has no tokenizer: send the prompt as token ids', 'invalid_request_error'));
    if (ids.length > ctx.maxPromptTokens) return reply.code(400).send(apiError(`prompt is ${ids.length} tokens, the limit is ${ctx.maxPromptTokens}`, 'invalid_request_error'));
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
      const it = model.generate(ids, toGenerateOptions(b, ac.signal));
      let r = await it.next(); // bad input (a token id out of range, a full queue) throws here: a 4xx
      metrics.promptTokens.inc(ids.length);
      if (!b.stream) {
        while (!r.done) {
          gen.token();
          lp?.add(r.value);
          r = await it.next();
        }
        ({ completionTokens } = r.value.usage);
        finishReason = r.value.finishReason;
        req.log.info({ prompt_tokens: ids.length, completion_tokens: completionTokens, finish_reason: finishReason }, 'completion');
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
        req.log.info({ prompt_tokens: ids.length, completion_tokens: completionTokens, finish_reason: finishReason }, 'completion');
        write(streamEvent(env, '', r.value.finishReason));
      });
    } finally {
      gen.end(completionTokens, finishReason);
      release();
    }
  });
}
