// What a deployed server needs around the routes: API keys, request ids, the drain state (graceful
// shutdown), the timeouts and the idle-SSE guard.
import { createHash, randomUUID, timingSafeEqual } from 'crypto';
import type { IncomingMessage, ServerResponse } from 'http';

import type { FastifyReply } from 'fastify';

/** An OpenAI-shaped error body. */
export function apiError(message: string, type: string, code?: string): { error: { message: string; type: string; code?: string } } {
  return { error: { message, type, ...(code !== undefined && { code }) } };
}

/** Checks `Authorization: Bearer <key>` against the keys in constant time, or null when no key is set. */
export function bearerChecker(keys: readonly string[]): ((authorization: string | undefined) => 'ok' | 'missing' | 'wrong') | null {
  if (keys.length === 0) return null;
  // fixed-length digests: the comparison takes the same time whatever the lengths of the keys
  const sha = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  const digests = keys.map(sha);
  return (authorization) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!m) return 'missing';
    const d = sha(m[1]);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok; // every key is compared
    return ok ? 'ok' : 'wrong';
  };
}

/** A client's x-request-id when it is 1–128 printable ASCII characters, else a fresh UUID. */
export function requestId(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && /^[\x20-\x7e]{1,128}$/.test(h) && h.trim() !== '' ? h : randomUUID();
}

/** Requests in flight, for the drain (graceful shutdown). */
export class InFlight {
  draining = false;
  readonly #controllers = new Set<AbortController>();
  #idle: (() => void)[] = [];

  get size(): number {
    return this.#controllers.size;
  }

  /** Registers a generation request; the returned function releases it (once it has fully ended). */
  track(ac: AbortController): () => void {
    this.#controllers.add(ac);
    return () => {
      this.#controllers.delete(ac);
      if (this.#controllers.size === 0) for (const w of this.#idle.splice(0)) w();
    };
  }

  abortAll(): number {
    const n = this.#controllers.size;
    for (const ac of this.#controllers) ac.abort();
    return n;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    return this.#controllers.size === 0 ? Promise.resolve() : new Promise((r) => this.#idle.push(r));
  }
}

/** Bounds on a server-sent-event stream whose client stops reading. */
export interface SseLimits {
  /** Bytes queued in the server for one stream (beyond the socket's buffers) before it is aborted. */
  maxBufferBytes: number;
  /** Milliseconds a stream may stay backed up (no 'drain' from the socket) before it is aborted. */
  stallTimeoutMs: number;
}

/**
 * A write function for a streaming response that cuts the connection (which aborts the request: see
 * the routes' 'close' handlers) once the client stops reading: more than `maxBufferBytes` queued, or
 * backed up for `stallTimeoutMs`. Returns the writer and a function that stops its timer.
 */
export function guardedWriter(res: ServerResponse, limits: SseLimits): { write: (chunk: string) => void; done: () => void } {
  let timer: NodeJS.Timeout | null = null;
  const clear = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const cut = (): void => {
    clear();
    res.destroy();
  };
  res.on('drain', clear);
  res.once('close', clear);
  return {
    write: (chunk) => {
      if (res.destroyed || res.writableEnded) return;
      const ok = res.write(chunk);
      if (res.writableLength > limits.maxBufferBytes) return cut();
      if (!ok && !timer) timer = setTimeout(cut, limits.stallTimeoutMs);
    },
    done: clear,
  };
}

/** Writes the reply's headers (x-request-id, …) with the SSE ones: for hijacked replies. */
export function writeEventStreamHead(reply: FastifyReply): void {
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
  reply.raw.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
}
