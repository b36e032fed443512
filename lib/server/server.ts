// The HTTP server over one model: POST /v1/completions (OpenAI shape, SSE streaming), GET /health,
// POST /v1/images/generations (a diffusion model with an image tokenizer, lib/server/images.ts),
// an `image` on /v1/completions of a vision-language model (lib/server/vlm.ts),
// GET /v1/models and GET /metrics. A language model is served with continuous batching
// (lib/server/language.ts), a diffusion LM one request at a time (lib/server/diffusion.ts). Around the
// routes (lib/server/production.ts): API keys, request ids, structured logs, timeouts, and the drain
// for a graceful shutdown (`drain(app, timeoutMs)`).
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { MambakitError } from '../errors';
import type { BatchLoad, DiffusionLM, LanguageModel, VisionLanguageModel } from '../models/interfaces';
import { serveDiffusion } from './diffusion';
import { serveImages } from './images';
import { serveLanguage } from './language';
import { ServerMetrics } from './metrics';
import { InFlight, SseLimits, apiError, bearerChecker, requestId } from './production';
import { vlmPrompts } from './vlm';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface ServeOptions {
  /** Name reported in responses and by GET /v1/models (default 'mamba'). */
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
  /**
   * API keys: when any is given, every route but GET /health needs `Authorization: Bearer <key>`
   * (compared in constant time); otherwise 401. Default: none (open).
   */
  apiKeys?: readonly string[];
  /** Structured request logs (fastify's pino, JSON lines on stdout): true = 'info'. Default off. */
  log?: boolean | LogLevel;
  /** Trust X-Forwarded-* from a reverse proxy (fastify's trustProxy: true, a hop count, or addresses/CIDRs). Default false. */
  trustProxy?: boolean | number | string | string[];
  /** Milliseconds a client has to send a request's headers (default 10 000). */
  headersTimeoutMs?: number;
  /** Milliseconds a client has to send a whole request, headers and body (default 30 000; ≥ headersTimeoutMs). */
  requestTimeoutMs?: number;
  /** Milliseconds an idle keep-alive connection stays open (default 72 000: above common proxies' 60 s). */
  keepAliveTimeoutMs?: number;
  /** Milliseconds of socket inactivity before it is closed; 0 = off (default: a long non-streamed generation is silent). */
  connectionTimeoutMs?: number;
  /** Open connections at most; 0 = no limit (default). */
  maxConnections?: number;
  /** A stream whose writes stay backed up (the client stopped reading) this long is aborted (default 30 000 ms). */
  sseStallTimeoutMs?: number;
  /** A stream with more than this many bytes queued in the server is aborted (default 1 MiB). */
  sseMaxBufferBytes?: number;
  /** Node.js process metrics (process_*, nodejs_*) in GET /metrics as well (default true). */
  processMetrics?: boolean;
}

/** What the route modules share (lib/server/language.ts, lib/server/diffusion.ts). */
export interface RouteContext {
  readonly name: string;
  readonly maxQueue: number;
  readonly maxPromptTokens: number;
  readonly maxTokens: number;
  readonly metrics: ServerMetrics;
  readonly inflight: InFlight;
  readonly sse: SseLimits;
  /** Sets what the load gauges of /metrics read. */
  setLoad(load: () => BatchLoad): void;
}

export interface DrainResult {
  /** Requests in flight when the drain began that ended on their own. */
  finished: number;
  /** Requests still running at the timeout, aborted (their slots freed). */
  aborted: number;
}

const servers = new WeakMap<FastifyInstance, InFlight>();

export function createServer(model: LanguageModel | DiffusionLM | VisionLanguageModel, opts: ServeOptions = {}): FastifyInstance {
  const name = opts.modelName ?? 'mamba';
  const headersTimeout = ms(opts.headersTimeoutMs, 10_000, 'headersTimeoutMs');
  const requestTimeout = ms(opts.requestTimeoutMs, 30_000, 'requestTimeoutMs');
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    throw new MambakitError('E_ARG', `createServer: headersTimeoutMs ${headersTimeout} must be ≤ requestTimeoutMs ${requestTimeout}`);
  const keepAliveTimeout = ms(opts.keepAliveTimeoutMs, 72_000, 'keepAliveTimeoutMs');
  const apiKeys = opts.apiKeys ?? [];
  if (apiKeys.some((k) => typeof k !== 'string' || !/^\S+$/.test(k))) throw new MambakitError('E_ARG', 'createServer: an API key must be a non-empty string without whitespace');
  const inflight = new InFlight();
  let load: () => BatchLoad = () => ({ running: 0, waiting: 0, freeSlots: 0 });
  const metrics = new ServerMetrics(() => load(), { defaultMetrics: opts.processMetrics ?? true });
  const ctx: RouteContext = {
    name, maxQueue: opts.maxQueue ?? 64, maxPromptTokens: opts.maxPromptTokens ?? 4096, maxTokens: opts.maxTokens ?? 2048,
    metrics, inflight,
    sse: { stallTimeoutMs: ms(opts.sseStallTimeoutMs, 30_000, 'sseStallTimeoutMs'), maxBufferBytes: ms(opts.sseMaxBufferBytes, 1 << 20, 'sseMaxBufferBytes') },
    setLoad: (l) => { load = l; },
  };

  const app = Fastify({
    // unknown fields and wrong types are errors (fastify's defaults strip and coerce them)
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    bodyLimit: 1 << 20,
    logger: opts.log ? { level: typeof opts.log === 'string' ? opts.log : 'info' } : false,
    genReqId: requestId,
    requestIdHeader: false, // genReqId reads (and validates) x-request-id itself
    trustProxy: typeof opts.trustProxy === 'number' ? trustHops(opts.trustProxy) : opts.trustProxy ?? false,
    requestTimeout, keepAliveTimeout, connectionTimeout: ms(opts.connectionTimeoutMs, 0, 'connectionTimeoutMs'),
    // Node enforces the header and request timeouts on a timer: check often enough for the limits to hold
    http: { headersTimeout, requestTimeout, keepAliveTimeout, connectionsCheckingInterval: Math.max(50, Math.min(5000, Math.floor(Math.min(headersTimeout || 5000, requestTimeout || 5000) / 4))) },
  });
  if (opts.maxConnections) app.server.maxConnections = opts.maxConnections;
  servers.set(app, inflight);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => reply.code(404).send(apiError(`no route ${req.method} ${req.url.split('?')[0]}`, 'invalid_request_error', 'not_found')));

  const checkKey = bearerChecker(apiKeys);
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    reply.header('x-request-id', req.id);
    const start = performance.now();
    reply.raw.once('close', () => {
      metrics.requests.inc({ route, method: req.method, status: String(reply.raw.statusCode) });
      metrics.requestDuration.observe({ route }, (performance.now() - start) / 1000);
    });
    const health = req.method === 'GET' && route === '/health';
    if (inflight.draining && !health)
      return reply.code(503).header('connection', 'close').send(apiError('the server is shutting down', 'server_error', 'server_shutting_down'));
    if (checkKey && !health) {
      const r = checkKey(req.headers.authorization);
      if (r !== 'ok') {
        const message = r === 'missing' ? 'Missing API key: send it as "Authorization: Bearer <key>"' : 'Incorrect API key provided';
        return reply.code(401).header('www-authenticate', 'Bearer').send(apiError(message, 'invalid_request_error', 'invalid_api_key'));
      }
    }
  });

  // routes
  const created = Math.floor(Date.now() / 1000);
  const modelCard = { id: name, object: 'model', created, owned_by: 'mambakit' };
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req, reply) =>
    req.params.id === name ? modelCard : reply.code(404).send(apiError(`The model '${req.params.id}' does not exist`, 'invalid_request_error', 'model_not_found')));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  if (model.kind === 'diffusion') {
    serveImages(app, model, ctx, serveDiffusion(app, model, ctx));  // one queue for both routes
  } else {
    const lm = model.kind === 'vlm' ? model.lm : model; // a VLM's requests are its language model's
    lm.configureBatching({ maxBatch: opts.maxBatch ?? 32, maxQueue: ctx.maxQueue, maxPrefillsPerStep: opts.maxPrefillsPerStep });
    ctx.setLoad(() => lm.load);
    serveLanguage(app, lm, ctx, model.kind === 'vlm' ? vlmPrompts(model) : undefined);
  }
  return app;
}

/**
 * Graceful shutdown of a server made by createServer: new requests get 503 (GET /health reports
 * 'draining'), requests in flight run on for up to `timeoutMs`, then the rest are aborted (their slots
 * freed at the next step); once all have ended the server closes. Resolves after app.close().
 */
export async function drain(app: FastifyInstance, timeoutMs = 30_000): Promise<DrainResult> {
  const inflight = servers.get(app);
  if (!inflight) throw new MambakitError('E_ARG', 'drain: not a server made by createServer');
  if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new MambakitError('E_ARG', `drain: timeoutMs must be ≥ 0, got ${timeoutMs}`);
  inflight.draining = true;
  const before = inflight.size;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    inflight.idle().then(() => false),
    new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); }),
  ]);
  clearTimeout(timer);
  const aborted = timedOut ? inflight.abortAll() : 0;
  await inflight.idle();
  await app.close();
  return { finished: before - aborted, aborted };
}

// trust the last n proxies (the addresses nearest the server)
function trustHops(n: number): (address: string, hop: number) => boolean {
  if (!(Number.isInteger(n) && n >= 0)) throw new MambakitError('E_ARG', `createServer: trustProxy as a hop count must be an integer ≥ 0, got ${n}`);
  return (_address, hop) => hop < n;
}

function ms(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!(Number.isInteger(v) && v >= 0)) throw new MambakitError('E_ARG', `createServer: ${name} must be an integer ≥ 0, got ${v}`);
  return v;
}

function errorHandler(err: unknown, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = err as Error & { validation?: unknown; statusCode?: number; code?: string };
  const status = e.statusCode;
  if (e.validation || status === 400 || e instanceof SyntaxError)
    return reply.code(400).send(apiError(e.message, 'invalid_request_error'));
  if (e instanceof MambakitError && e.code === 'E_ARG')
    return reply.code(/queue is full/.test(e.message) ? 429 : 400).send(apiError(e.message, 'invalid_request_error'));
  return reply.code(status && status >= 400 ? status : 500).send(apiError(e.message, status && status < 500 ? 'invalid_request_error' : 'server_error'));
}
