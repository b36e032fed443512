// POST /v1/completions for a diffusion LM (LLaDA, MMaDA): the OpenAI body plus the sampler's options as
// mambakit extensions (block_length, steps, remasking, cfg_scale, cache, threshold). max_tokens is the
// generated length (genLength). Requests run one at a time (each is a whole batch of forward passes); a
// bounded queue answers 429 beyond its limit. Streaming sends the text of each block once it is final
// (a block's tokens never change after the sampler moves past it).
import type { FastifyInstance } from 'fastify';

import type { DiffusionCache, DiffusionOptions, Remasking } from '../diffusion/options';
import type { DiffusionLM } from '../models/interfaces';
import { envelope, sendEvents, streamEvent } from './completions';
import { apiError } from './production';
import type { RouteContext } from './server';

export interface DiffusionRequest {
  prompt: string | number[];
  model?: string;
  max_tokens?: number;
  temperature?: number;
  seed?: number;
  stream?: boolean;
  block_length?: number;
  steps?: number;
  remasking?: Remasking;
  cfg_scale?: number;
  cache?: DiffusionCache;
  threshold?: number;
}

export function diffusionSchema(maxTokens: number): Record<string, unknown> {
  return {
    type: 'object', required: ['prompt'], additionalProperties: false,
    properties: {
      prompt: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } }] },
      model: { type: 'string' },
      max_tokens: { type: 'integer', minimum: 1, maximum: maxTokens },
      temperature: { type: 'number', minimum: 0, maximum: 100 },
      seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
      stream: { type: 'boolean' },
      block_length: { type: 'integer', minimum: 1, maximum: maxTokens },
      steps: { type: 'integer', minimum: 1, maximum: 65536 },
      remasking: { enum: ['low_confidence', 'random'] },
      cfg_scale: { type: 'number', minimum: 0, maximum: 100 },
      cache: { enum: ['none', 'prefix', 'dual'] },
      threshold: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    },
  };
}

export function toDiffusionOptions(b: DiffusionRequest, signal: AbortSignal): DiffusionOptions {
  return {
    genLength: b.max_tokens, blockLength: b.block_length, steps: b.steps, remasking: b.remasking, temperature: b.temperature,
    cfgScale: b.cfg_scale, cache: b.cache, threshold: b.threshold, seed: b.seed, signal,
  };
}

/** Registers /health and /v1/completions for `model` on `app`. */
export function serveDiffusion(app: FastifyInstance, model: DiffusionLM, ctx: RouteContext): void {
  const { name, metrics, inflight } = ctx;
  let running = 0, waiting = 0;
  let tail: Promise<void> = Promise.resolve();
  ctx.setLoad(() => ({ running, waiting, freeSlots: 1 - running }));
  app.get('/health', async (_req, reply) => {
    reply.code(inflight.draining ? 503 : 200);
    return { status: inflight.draining ? 'draining' : 'ok', model: name, kind: model.kind, device: model.device, dtype: model.dtype, running, waiting };
  });

  app.post<{ Body: DiffusionRequest }>('/v1/completions', { schema: { body: diffusionSchema(ctx.maxTokens) } }, async (req, reply) => {
    const start = performance.now();
    const b = req.body;
    const ids = typeof b.prompt === 'string' ? model.tokenizer?.encode(b.prompt) : b.prompt;
    if (!ids) return reply.code(400).send(apiError('this model has no tokenizer: send the prompt as token ids', 'invalid_request_error'));
    if (ids.length > ctx.maxPromptTokens) return reply.code(400).send(apiError(`prompt is ${ids.length} tokens, the limit is ${ctx.maxPromptTokens}`, 'invalid_request_error'));
    if (waiting >= ctx.maxQueue) return reply.code(429).send(apiError(`server busy: ${waiting} requests waiting`, 'rate_limit_error'));
    const ac = new AbortController();
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    const releaseInflight = inflight.track(ac);
    const gen = metrics.generation(start, false);
    let completionTokens = 0, finishReason: string | null = null;
    const env = envelope(name);
    // one request at a time: wait for the one ahead
    ++waiting;
    const ahead = tail;
    let release!: () => void;
    tail = new Promise<void>((r) => { release = r; });
    await ahead;
    --waiting;
    ++running;
    try {
      const it = model.steps([ids], toDiffusionOptions(b, ac.signal));
      let s = await it.next();  // bad options (E_ARG) throw here: a 400
      metrics.promptTokens.inc(ids.length);
      if (!b.stream) {
        while (!s.done) s = await it.next();
        const [r] = s.value;
        gen.token();
        completionTokens = r.usage.completionTokens;
        finishReason = r.finishReason === 'abort' ? 'abort' : 'length';
        return {
          ...env, object: 'text_completion',
          choices: [{ index: 0, text: r.text ?? '', tokens: r.tokens, finish_reason: r.finishReason === 'abort' ? 'abort' : 'length', logprobs: null }],
          usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.promptTokens + r.usage.completionTokens, forward_passes: r.nfe },
        };
      }
      const decoder = model.tokenizer?.streamDecoder({ context: ids, skipSpecialTokens: true }) ?? null;
      return await sendEvents(reply, ctx.sse, async (write) => {
        let sent = 0, ended = false;  // generated ids already streamed; whether an end-of-text id was reached
        const emit = (final: readonly number[]): void => {
          let text = '';
          for (; sent < final.length && !ended; ++sent) {
            const id = final[sent];
            if (id === model.maskId) break;
            if (model.stopIds.has(id)) { ended = true; break; }
            text += decoder ? decoder.push(id) : `${id} `;
          }
          if (text) {
            gen.token();
            write(streamEvent(env, text, null));
          }
        };
        while (!s.done) {
          emit(s.value.ids[0].slice(0, s.value.final));  // blocks that are done
          s = await it.next();
        }
        const [r] = s.value;
        completionTokens = r.usage.completionTokens;
        finishReason = r.finishReason === 'abort' ? 'abort' : 'length';
        emit(r.ids);
        const rest = decoder && !ended ? decoder.flush() : '';
        if (rest) write(streamEvent(env, rest, null));
        write(streamEvent(env, '', r.finishReason === 'abort' ? 'abort' : 'length'));
      });
    } finally {
      --running;
      release();
      gen.end(completionTokens, finishReason);
      releaseInflight();
    }
  });
}
