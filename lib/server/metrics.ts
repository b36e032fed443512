// GET /metrics: the server's Prometheus metrics (prom-client, one registry per server instance). HTTP
// requests are counted from fastify's hooks; generation metrics come from the request loop (the stream
// of chunks each request consumes), the load gauges from the model's scheduler at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { BatchLoad } from '../models/interfaces';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'route'>;
  readonly promptTokens: Counter;
  readonly completionTokens: Counter;
  readonly finished: Counter<'finish_reason'>;
  readonly timeToFirstToken: Histogram;
  readonly interTokenLatency: Histogram;
  readonly decodeBatchSize: Histogram;
  #decoding = 0;       // streams past their first token: every step decodes all of them
  #burst = 0;         // the most decoding streams seen during the current step (0: no step pending)

  constructor(load: () => BatchLoad, opts: { defaultMetrics: boolean }) {
    const registers = [this.registry];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'mambakit_http_requests_total', help: 'HTTP requests answered, by route, method and status code.', labelNames: ['route', 'method', 'status'], registers });
    this.requestDuration = new Histogram({ name: 'mambakit_http_request_duration_seconds', help: 'Time from receiving a request to the end of its response (a stream: its last event), by route.', labelNames: ['route'], buckets: DURATION_BUCKETS, registers });
    this.promptTokens = new Counter({ name: 'mambakit_prompt_tokens_total', help: 'Prompt tokens of accepted generation requests.', registers });
    this.completionTokens = new Counter({ name: 'mambakit_completion_tokens_total', help: 'Tokens generated.', registers });
    this.finished = new Counter({ name: 'mambakit_generations_total', help: 'Generation requests that ran to an end, by finish reason (stop, length, abort).', labelNames: ['finish_reason'], registers });
    this.timeToFirstToken = new Histogram({ name: 'mambakit_time_to_first_token_seconds', help: 'Time from receiving a generation request to its first generated token (diffusion: its first final block).', buckets: LATENCY_BUCKETS, registers });
    this.interTokenLatency = new Histogram({ name: 'mambakit_inter_token_latency_seconds', help: 'Time between two consecutive tokens of one request.', buckets: LATENCY_BUCKETS, registers });
    this.decodeBatchSize = new Histogram({ name: 'mambakit_decode_batch_size', help: 'Requests decoded together, one observation per decode step.', buckets: BATCH_BUCKETS, registers });
    const gauge = (name: string, help: string, read: (l: BatchLoad) => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read(load())); } });
    };
    gauge('mambakit_queue_depth', 'Requests waiting for a slot.', (l) => l.waiting);
    gauge('mambakit_running_requests', 'Requests holding a slot (being prefilled or decoded).', (l) => l.running);
    gauge('mambakit_free_slots', 'State slots free for new requests.', (l) => l.freeSlots);
  }

  /**
   * The instrumentation of one generation request: call `token()` for each chunk of the stream and
   * `end()` once when the stream is over (any way). `perToken` false (a diffusion model's blocks):
   * only the time to the first chunk is observed, not inter-token latencies or decode batches.
   */
  generation(start: number, perToken = true): { token: () => void; end: (completionTokens: number, finishReason: string | null) => void } {
    let last = 0, decoding = false, ended = false;
    return {
      token: () => {
        const now = performance.now();
        if (last === 0) this.timeToFirstToken.observe((now - start) / 1000);
        else if (perToken) {
          this.interTokenLatency.observe((now - last) / 1000);
          if (!decoding) { decoding = true; ++this.#decoding; }
          this.#step();
        }
        last = now;
      },
      end: (completionTokens, finishReason) => {
        if (ended) return;
        ended = true;
        if (decoding) --this.#decoding;
        this.completionTokens.inc(completionTokens);
        if (finishReason) this.finished.inc({ finish_reason: finishReason });
      },
    };
  }

  // The chunks of one decode step reach their consumers in the same turn of the event loop (the
  // scheduler hands them over together); the step's batch is every stream past its first token.
  #step(): void {
    if (this.#burst === 0)
      setImmediate(() => {
        this.decodeBatchSize.observe(this.#burst);
        this.#burst = 0;
      });
    this.#burst = Math.max(this.#burst, this.#decoding);
  }
}
