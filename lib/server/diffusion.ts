// POST /v1/completions for a diffusion LM (LLaDA, MMaDA): the OpenAI body plus the sampler's options as
// mambakit extensions (block_length, steps, remasking, cfg_scale, cache, threshold). max_tokens is the
// generated length (genLength). Requests run one at a time (each is a whole batch of forward passes); a
// bounded queue answers 429 beyond its limit. Streaming sends the text of each block once it is final
// (a block's tokens never change after the sampler moves past it). An MMaDA model with an image tokenizer
// also answers questions about an image: the extension field `image` (base64 PNG/JPEG) → model.understand.
// The queue (OneAtATime) is shared with POST /v1/images/generations (lib/server/images.ts).
import type { FastifyInstance } from 'fastify';

import type { DiffusionCache, DiffusionOptions, Remasking } from '../diffusion/options';
import { MambakitError } from '../errors';
import type { BatchLoad, DiffusionLM, DiffusionOutput } from '../models/interfaces';
import type { LladaLM } from '../models/llada';
import { envelope, sendEvents, streamEvent } from './completions';
import { IMAGE_BODY_LIMIT, decodeBase64Image } from './image-field';
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
  /** Extension: a base64 PNG/JPEG (a data: URL is accepted too) to ask the prompt about (MMaDA with an image tokenizer). */
  image?: string;
  /** Extension: the attached editor set (`mambakit serve --editors NAME=DIR`) that edits this request. */
  editors?: string;
}

/** What the image routes need of a diffusion model (LladaLM has it; a text-only LLaDA has no imageTokenizer). */
export type ImageDiffusionLM = DiffusionLM & Pick<LladaLM, 'imageTokenizer' | 'imageLayout' | 'imageSteps' | 'understand'>;

export function hasImageApi(model: DiffusionLM): model is ImageDiffusionLM {
  return 'imageTokenizer' in model && 'imageSteps' in model && 'understand' in model;
}

/**
 * The one-at-a-time queue of a diffusion model's requests (text, understanding and images alike): each
 * request is a whole batch of forward passes. One runs; up to `maxQueue` wait; beyond that: full().
 */
export class OneAtATime {
  running = 0;
  waiting = 0;
  #tail: Promise<void> = Promise.resolve();

  constructor(readonly maxQueue: number) {}

  get load(): BatchLoad {
    return { running: this.running, waiting: this.waiting, freeSlots: 1 - this.running };
  }

  /** Whether a new request must be refused (429): the slot is taken (or promised to a waiter) and maxQueue wait. */
  full(): boolean {
    return this.waiting >= 1 - this.running + this.maxQueue;
  }

  /** Waits for the turn of the request (call right after full(), without an await between); the result releases the slot. */
  async acquire(): Promise<() => void> {
    ++this.waiting;
    const ahead = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => { release = r; });
    await ahead;
    --this.waiting;
    ++this.running;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      --this.running;
      release();
    };
  }
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
      image: { type: 'string', minLength: 1 },
      editors: { type: 'string', minLength: 1, maxLength: 64 },
    },
  };
}

export function toDiffusionOptions(b: DiffusionRequest, signal: AbortSignal): DiffusionOptions {
  return {
    genLength: b.max_tokens, blockLength: b.block_length, steps: b.steps, remasking: b.remasking, temperature: b.temperature,
    cfgScale: b.cfg_scale, cache: b.cache, threshold: b.threshold, seed: b.seed, signal, editors: b.editors,
  };
}

/** Registers /health and /v1/completions for `model` on `app`; returns the queue, for the other routes of the model. */
export function serveDiffusion(app: FastifyInstance, model: DiffusionLM, ctx: RouteContext): OneAtATime {
  const { name, metrics, inflight } = ctx;
  const queue = new OneAtATime(ctx.maxQueue);
  ctx.setLoad(() => queue.load);
  app.get('/health', async (_req, reply) => {
    reply.code(inflight.draining ? 503 : 200);
    return { status: inflight.draining ? 'draining' : 'ok', model: name, kind: model.kind, device: model.device, dtype: model.dtype, running: queue.running, waiting: queue.waiting };
  });

  const images = hasImageApi(model);
  app.post<{ Body: DiffusionRequest }>('/v1/completions', {
    schema: { body: diffusionSchema(ctx.maxTokens) }, ...(images && { bodyLimit: IMAGE_BODY_LIMIT }),
  }, async (req, reply) => {
    const start = performance.now();
    const b = req.body;
    const ids = typeof b.prompt === 'string' ? model.tokenizer?.encode(b.prompt) : b.prompt;
    if (!ids) return reply.code(400).send(apiError('this model has no tokenizer: send the prompt as token ids', 'invalid_request_error'));
    if (ids.length > ctx.maxPromptTokens) return reply.code(400).send(apiError(`prompt is ${ids.length} tokens, the limit is ${ctx.maxPromptTokens}`, 'invalid_request_error'));
    let image: Buffer | null = null;
    if (b.image !== undefined) {
      if (!images || !model.imageTokenizer)
        return reply.code(400).send(apiError(`${model.modelType}: this model has no image tokenizer: it cannot take an image (serve an MMaDA checkpoint with its MAGVIT-v2 tokenizer)`, 'invalid_request_error'));
      if (b.stream) return reply.code(400).send(apiError('image understanding answers in one response: stream is not supported with image', 'invalid_request_error'));
      try {
        image = decodeBase64Image(b.image);
      } catch (e) {
        return reply.code(400).send(apiError((e as Error).message, 'invalid_request_error'));
      }
    }
    if (queue.full()) return reply.code(429).send(apiError(`server busy: ${queue.waiting} requests waiting`, 'rate_limit_error'));
    const ac = new AbortController();
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    const releaseInflight = inflight.track(ac);
    const gen = metrics.generation(start, false);
    let completionTokens = 0, finishReason: string | null = null;
    const env = envelope(name);
    const answer = (r: DiffusionOutput) => {
      gen.token();
      completionTokens = r.usage.completionTokens;
      finishReason = r.finishReason === 'abort' ? 'abort' : 'length';
      return {
        ...env, object: 'text_completion',
        choices: [{ index: 0, text: r.text ?? '', tokens: r.tokens, finish_reason: finishReason, logprobs: null }],
        usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.promptTokens + r.usage.completionTokens, forward_passes: r.nfe },
      };
    };
    const release = await queue.acquire();  // one request at a time: wait for the one ahead
    try {
      if (image && images) {
        let r: DiffusionOutput;
        try {
          r = await model.understand(image, ids, toDiffusionOptions(b, ac.signal));
        } catch (e) {
          // not an image (sharp cannot decode it): the client's fault
          if (e instanceof MambakitError && e.code === 'E_FORMAT') return reply.code(400).send(apiError(e.message, 'invalid_request_error'));
          throw e;
        }
        metrics.promptTokens.inc(r.usage.promptTokens);
        return answer(r);
      }
      const it = model.steps([ids], toDiffusionOptions(b, ac.signal));
      let s = await it.next();  // bad options (E_ARG) throw here: a 400
      metrics.promptTokens.inc(ids.length);
      if (!b.stream) {
        while (!s.done) s = await it.next();
        return answer(s.value[0]);
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
      release();
      gen.end(completionTokens, finishReason);
      releaseInflight();
    }
  });
  return queue;
}
