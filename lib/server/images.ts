// POST /v1/images/generations for an MMaDA model with an image tokenizer (model.imageTokenizer): OpenAI's
// image-generation shape (prompt, n, size, response_format 'b64_json', user) plus MaskGIT's options as
// mambakit extensions (steps, guidance, temperature, seed, deterministic). The n images are one batch of the
// prompt repeated n times under one seed: the draws are keyed by row, so the images differ (unless
// `deterministic`, where every row is the same argmax image). Requests share the one-at-a-time queue of the
// diffusion completions (lib/server/diffusion.ts).
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';

import type { DiffusionLM } from '../models/interfaces';
import { OneAtATime, hasImageApi } from './diffusion';
import { apiError } from './production';
import type { RouteContext } from './server';

export interface ImageRequest {
  prompt: string;
  model?: string;
  n?: number;
  size?: string;
  response_format?: 'b64_json' | 'url';
  user?: string;
  steps?: number;
  guidance?: number;
  temperature?: number;
  seed?: number;
  deterministic?: boolean;
}

/** The most images one request may ask for (OpenAI's dall-e-2 limit is 10; each image is a row of the batch). */
export const MAX_IMAGES = 8;

export const imageSchema: Record<string, unknown> = {
  type: 'object', required: ['prompt'], additionalProperties: false,
  properties: {
    prompt: { type: 'string', minLength: 1 },
    model: { type: 'string' },
    n: { type: 'integer', minimum: 1, maximum: MAX_IMAGES },
    size: { type: 'string' },
    response_format: { enum: ['b64_json', 'url'] },
    user: { type: 'string' },
    steps: { type: 'integer', minimum: 1, maximum: 4096 },
    guidance: { type: 'number', minimum: 0, maximum: 100 },
    temperature: { type: 'number', minimum: 0, maximum: 100 },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    deterministic: { type: 'boolean' },
  },
};

/** Registers POST /v1/images/generations for a diffusion model, its requests in `queue`. */
export function serveImages(app: FastifyInstance, model: DiffusionLM, ctx: RouteContext, queue: OneAtATime): void {
  const { name, metrics, inflight } = ctx;
  const generated = new Counter({ name: 'mambakit_images_generated_total', help: 'Images generated (POST /v1/images/generations), by finish reason.', labelNames: ['finish_reason'], registers: [metrics.registry] });
  app.post<{ Body: ImageRequest }>('/v1/images/generations', { schema: { body: imageSchema } }, async (req, reply) => {
    const b = req.body;
    const invalid = (message: string) => reply.code(400).send(apiError(message, 'invalid_request_error'));
    if (!hasImageApi(model) || !model.imageTokenizer)
      return invalid(`${model.modelType}: the model '${name}' has no image tokenizer: it cannot generate images (serve an MMaDA checkpoint with its MAGVIT-v2 tokenizer)`);
    if (b.response_format === 'url') return invalid("response_format 'url' is not supported: this server stores no images and serves no URLs; use 'b64_json' (the default)");
    const side = Math.round(Math.sqrt(model.imageLayout({ bos: 0, eos: 0 }).imageTokens)) * model.imageTokenizer.config.downsample;
    const size = `${side}x${side}`;
    if (b.size !== undefined && b.size !== size) return invalid(`size '${b.size}' is not supported: this model makes ${size} images only`);
    const ids = model.tokenizer?.encode(b.prompt);
    if (!ids) return invalid('this model has no tokenizer.json: it cannot read a text prompt');
    if (ids.length > ctx.maxPromptTokens) return invalid(`prompt is ${ids.length} tokens, the limit is ${ctx.maxPromptTokens}`);
    if (queue.full()) return reply.code(429).send(apiError(`server busy: ${queue.waiting} requests waiting`, 'rate_limit_error'));
    const ac = new AbortController();
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
    const releaseInflight = inflight.track(ac);
    const release = await queue.acquire();
    try {
      const n = b.n ?? 1;
      const it = model.imageSteps(Array<string>(n).fill(b.prompt), {
        steps: b.steps, guidance: b.guidance, temperature: b.temperature, seed: b.seed, deterministic: b.deterministic, signal: ac.signal,
      });
      let s = await it.next();  // bad options (E_ARG) throw here: a 400
      metrics.promptTokens.inc(ids.length * n);
      while (!s.done) s = await it.next();
      const imgs = s.value;
      const finish = imgs[0]?.finishReason ?? 'abort';
      generated.inc({ finish_reason: finish }, imgs.length);
      if (finish === 'abort')  // the client left, or the server is draining: no finished image to send
        return reply.code(503).send(apiError('the image generation was aborted', 'server_error', 'aborted'));
      return {
        created: Math.floor(Date.now() / 1000),
        data: imgs.map((img) => ({ b64_json: img.png.toString('base64') })),
        usage: { forward_passes: imgs[0].nfe },
      };
    } finally {
      release();
      releaseInflight();
    }
  });
}
