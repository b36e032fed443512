// The server's production features over loopback (fetch and raw sockets): API keys, /v1/models,
// /metrics (parsed as Prometheus text, counters moving with requests), logprobs against the sampler's,
// request ids, the drain with streams in flight (no slot lost), slow and stalled clients cut off.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import type { ServerResponse } from 'http';

import type { FastifyInstance } from 'fastify';

import { LladaLM, MambaLM, createServer, loadLanguageModel, loadModel } from '../../lib';
import type { GenerateChunk, GenerateOptions } from '../../lib';
import { drain } from '../../lib/server/server';
import { guardedWriter } from '../../lib/server/production';
import { FIXTURE_VOCAB, writeLladaCheckpoint } from '../helpers/llada-ckpt';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { EOS, MERGES, byteLevelTokenizerJson } from '../helpers/tokenizer-fixture';

const S: MambaShape = { D: 32, L: 2, V: 256 + MERGES.length + 1, N: 8, expand: 2, K: 4 };
const KEYS = ['sk-first-key', 'sk-second-key-longer'];
const AUTH = { authorization: `Bearer ${KEYS[0]}` };
let tmp: string;
let model: MambaLM;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-prod-'));
  await writeMambaCheckpoint(tmp, S, randomMambaWeights(S));
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
  fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify({ eos_token: EOS }));
  model = await loadLanguageModel(tmp);
  app = createServer(model, { modelName: 'tiny', maxBatch: 4, maxQueue: 2, maxPromptTokens: 64, apiKeys: KEYS, headersTimeoutMs: 300, requestTimeoutMs: 2000 });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (body: unknown, headers: Record<string, string> = AUTH, url = `${base}/v1/completions`) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

interface Lp { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[]; text_offset: number[]; token_ids: number[] }
interface Completion { choices: { text: string; finish_reason: string; logprobs: Lp | null }[]; usage: { prompt_tokens: number; completion_tokens: number } }

/** The data events of an SSE body, parsed (the final [DONE] returned separately). */
function events(text: string): { chunks: Completion[]; done: boolean } {
  const ev = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  const done = ev[ev.length - 1] === '[DONE]';
  return { chunks: (done ? ev.slice(0, -1) : ev).map((e) => JSON.parse(e) as Completion), done };
}

async function chunksOf(prompt: string, opts: GenerateOptions): Promise<GenerateChunk[]> {
  const out: GenerateChunk[] = [];
  for await (const c of model.generate(prompt, opts)) out.push(c);
  return out;
}

describe('API keys', () => {
  test('GET /health stays open', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  test.each([
    ['missing', {}],
    ['wrong', { authorization: 'Bearer sk-not-a-key' }],
    ['a prefix of a key', { authorization: 'Bearer sk-first' }],
    ['not a bearer token', { authorization: `Basic ${KEYS[0]}` }],
  ])('%s key → 401 in the OpenAI shape', async (_name, headers) => {
    for (const r of [await fetch(`${base}/v1/models`, { headers }), await fetch(`${base}/metrics`, { headers }), await post({ prompt: 'x' }, headers)]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      const j = (await r.json()) as { error: { message: string; type: string; code: string } };
      expect(j.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
      expect(j.error.message.length).toBeGreaterThan(0);
    }
  });

  test('every configured key is accepted', async () => {
    for (const k of KEYS) expect((await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${k}` } })).status).toBe(200);
    expect((await post({ prompt: 'hi', max_tokens: 2 }, { authorization: `bearer ${KEYS[1]}` })).status).toBe(200);
  });
});

test('GET /v1/models in the OpenAI shape', async () => {
  const r = await fetch(`${base}/v1/models`, { headers: AUTH });
  const j = (await r.json()) as { object: string; data: { id: string; object: string; created: number; owned_by: string }[] };
  expect(j).toEqual({ object: 'list', data: [{ id: 'tiny', object: 'model', created: expect.any(Number), owned_by: 'mambakit' }] });
  expect(Math.abs(j.data[0].created - Date.now() / 1000)).toBeLessThan(600);
  expect(((await (await fetch(`${base}/v1/models/tiny`, { headers: AUTH })).json()) as { id: string }).id).toBe('tiny');
  expect((await fetch(`${base}/v1/models/other`, { headers: AUTH })).status).toBe(404);
});

describe('request ids', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  test('echoed when valid, else a fresh UUID; on errors and streams too', async () => {
    const id = (r: Response): string | null => r.headers.get('x-request-id');
    expect(id(await fetch(`${base}/health`, { headers: { 'x-request-id': 'trace-abc 123' } }))).toBe('trace-abc 123');
    const a = id(await fetch(`${base}/health`)), b = id(await fetch(`${base}/health`));
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
    expect(id(await fetch(`${base}/health`, { headers: { 'x-request-id': 'x'.repeat(129) } }))).toMatch(UUID);
    expect(id(await fetch(`${base}/health`, { headers: { 'x-request-id': 'caf\u00e9' } }))).toMatch(UUID);
    expect(id(await post({ prompt: 'x' }, { 'x-request-id': 'unauthorized-1' }))).toBe('unauthorized-1');
    expect(id(await post({ prompt: '' }, { ...AUTH, 'x-request-id': 'bad-body-1' }))).toBe('bad-body-1');
    const s = await post({ prompt: 'hi', max_tokens: 3, stream: true }, { ...AUTH, 'x-request-id': 'stream-1' });
    expect(id(s)).toBe('stream-1');
    expect(s.headers.get('content-type')).toMatch(/text\/event-stream/);
    await s.text();
  });
});

// ---- /metrics ----

interface Sample { name: string; labels: Record<string, string>; value: number }
/** A strict reader of the Prometheus text format (0.0.4): HELP/TYPE comments and samples. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(m[3]);
        types.set(m[2], m[3]);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
      let l: RegExpExecArray | null;
      let used = 0;
      while ((l = re.exec(m[2]))) { labels[l[1]] = l[2]; used = re.lastIndex; }
      if (used !== m[2].length) throw new Error(`bad labels: ${line}`);
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]) && !types.has(family)) throw new Error(`sample without a TYPE: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return { types, samples };
}

async function scrape(): Promise<{ types: Map<string, string>; get: (name: string, labels?: Record<string, string>) => number; samples: Sample[] }> {
  const r = await fetch(`${base}/metrics`, { headers: AUTH });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const { types, samples } = parsePrometheus(await r.text());
  const get = (name: string, labels: Record<string, string> = {}): number =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
  return { types, samples, get };
}

test('/metrics is Prometheus text whose counters move with requests', async () => {
  const before = await scrape();
  for (const [n, t] of [
    ['mambakit_http_requests_total', 'counter'], ['mambakit_http_request_duration_seconds', 'histogram'],
    ['mambakit_prompt_tokens_total', 'counter'], ['mambakit_completion_tokens_total', 'counter'], ['mambakit_generations_total', 'counter'],
    ['mambakit_queue_depth', 'gauge'], ['mambakit_running_requests', 'gauge'], ['mambakit_free_slots', 'gauge'],
    ['mambakit_decode_batch_size', 'histogram'], ['mambakit_time_to_first_token_seconds', 'histogram'], ['mambakit_inter_token_latency_seconds', 'histogram'],
    ['process_cpu_seconds_total', 'counter'],
  ]) expect([n, before.types.get(n)]).toEqual([n, t]);
  expect(before.get('mambakit_free_slots')).toBe(4);
  expect(before.get('mambakit_queue_depth')).toBe(0);
  expect(before.get('mambakit_running_requests')).toBe(0);

  const ok = { route: '/v1/completions', method: 'POST', status: '200' };
  const bodies = [{ prompt: 'hello world', max_tokens: 6, temperature: 0 }, { prompt: [104, 105], max_tokens: 9, temperature: 0 }];
  const results = (await Promise.all(bodies.map(async (b) => (await post(b)).json()))) as Completion[];
  const s = await post({ prompt: [104], max_tokens: 12, temperature: 1, seed: 5, stream: true });
  const streamed = events(await s.text());
  expect(streamed.done).toBe(true);
  await post({ prompt: 'x' }, {}); // a 401
  const after = await scrape();

  const prompt = results.reduce((a, r) => a + r.usage.prompt_tokens, 0) + 1;
  const completion = results.reduce((a, r) => a + r.usage.completion_tokens, 0);
  expect(after.get('mambakit_http_requests_total', ok) - before.get('mambakit_http_requests_total', ok)).toBe(3);
  expect(after.get('mambakit_http_requests_total', { route: '/v1/completions', status: '401' }) - before.get('mambakit_http_requests_total', { route: '/v1/completions', status: '401' })).toBe(1);
  expect(after.get('mambakit_http_requests_total', { route: '/metrics', status: '200' }) - before.get('mambakit_http_requests_total', { route: '/metrics', status: '200' })).toBeGreaterThanOrEqual(1);
  expect(after.get('mambakit_prompt_tokens_total') - before.get('mambakit_prompt_tokens_total')).toBe(prompt);
  const streamedTokens = after.get('mambakit_completion_tokens_total') - before.get('mambakit_completion_tokens_total') - completion;
  expect(streamedTokens).toBeGreaterThanOrEqual(1);
  expect(streamedTokens).toBeLessThanOrEqual(12);
  expect(after.get('mambakit_generations_total') - before.get('mambakit_generations_total')).toBe(3);
  expect(after.get('mambakit_time_to_first_token_seconds_count') - before.get('mambakit_time_to_first_token_seconds_count')).toBe(3);
  expect(after.get('mambakit_inter_token_latency_seconds_count') - before.get('mambakit_inter_token_latency_seconds_count')).toBeGreaterThanOrEqual(completion - 2);
  expect(after.get('mambakit_decode_batch_size_count')).toBeGreaterThan(before.get('mambakit_decode_batch_size_count'));
  // the two concurrent requests were decoded together at least once
  expect(after.get('mambakit_decode_batch_size_bucket', { le: '1' })).toBeLessThan(after.get('mambakit_decode_batch_size_count'));
  expect(after.get('mambakit_http_request_duration_seconds_count', { route: '/v1/completions' }) - before.get('mambakit_http_request_duration_seconds_count', { route: '/v1/completions' })).toBe(4);
  // histograms: cumulative buckets, +Inf = count
  for (const h of ['mambakit_time_to_first_token_seconds', 'mambakit_inter_token_latency_seconds', 'mambakit_decode_batch_size']) {
    const buckets = after.samples.filter((x) => x.name === `${h}_bucket`);
    for (let i = 1; i < buckets.length; ++i) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
    expect(buckets[buckets.length - 1].labels.le).toBe('+Inf');
    expect(buckets[buckets.length - 1].value).toBe(after.get(`${h}_count`));
  }
  expect(after.get('mambakit_free_slots')).toBe(4);
});

// ---- logprobs ----

const logSoftmax = (row: Float32Array): Float64Array => {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  const out = new Float64Array(row.length);
  row.forEach((v, i) => { out[i] = v - m - Math.log(s); });
  return out;
};

describe('logprobs', () => {
  test('temperature 0: the sampler\'s logprobs; top_logprobs sorted, the argmax first, equal to a float64 log-softmax', async () => {
    const chunks = await chunksOf('hello world', { temperature: 0, maxTokens: 8 });
    const r = await post({ prompt: 'hello world', max_tokens: 8, temperature: 0, logprobs: 3 });
    const j = (await r.json()) as Completion;
    const lp = j.choices[0].logprobs as Lp;
    expect(lp.token_ids).toEqual(chunks.map((c) => c.tokenId));
    expect(lp.token_logprobs).toEqual(chunks.map((c) => c.logprob));
    expect(lp.tokens).toEqual(chunks.map((c) => model.tokenizer!.decode([c.tokenId])));
    let off = 0;
    chunks.forEach((c, i) => {
      expect(lp.text_offset[i]).toBe(off);
      off += c.text.length;
      // an object token → logprob, as OpenAI's: key order is not meaningful (JS lists integer-like keys
      // such as "3" first, a CI run saw one), so compare by value
      const top = Object.entries(lp.top_logprobs[i]).sort((x, y) => y[1] - x[1]);
      expect(top.length).toBeGreaterThanOrEqual(1);
      expect(top.length).toBeLessThanOrEqual(4);
      // greedy: the chosen token is the argmax, the most likely entry, with the sampler's logprob
      expect(top[0][0]).toBe(lp.tokens[i]);
      expect(top[0][1]).toBeCloseTo(lp.token_logprobs[i], 5);
    });
    expect(j.choices[0].text).toBe(chunks.map((c) => c.text).join(''));

    // against the logits of a full forward pass over prompt + generated tokens
    const ids = [...model.tokenizer!.encode('hello world'), ...chunks.map((c) => c.tokenId)];
    const logits = await model.forward([ids]);
    const all = (await logits.data()) as Float32Array;
    logits.dispose();
    const P = ids.length - chunks.length;
    const direct = await chunksOf('hello world', { temperature: 0, maxTokens: 8, topLogprobs: 3 });
    direct.forEach((c, i) => {
      const ref = logSoftmax(all.subarray((P - 1 + i) * S.V, (P + i) * S.V));
      const order = Array.from(ref.keys()).sort((a, b) => ref[b] - ref[a] || a - b).slice(0, 3);
      expect(c.topLogprobs!.map((t) => t.tokenId)).toEqual(order);
      c.topLogprobs!.forEach((t) => expect(t.logprob).toBeCloseTo(ref[t.tokenId], 4));
      expect(c.logprob).toBeCloseTo(ref[c.tokenId], 4);
    });
  });

  test.each([
    ['temperature 2', { temperature: 2 }],
    ['top-k 3 (the three renormalized)', { temperature: 3, topK: 3 }],
    ['top-p 0.8 + min-p 0.05', { temperature: 3, topP: 0.8, minP: 0.05 }],
    ['top-k 8 + top-p 0.9 + repetition penalty', { temperature: 2.5, topK: 8, topP: 0.9, repetitionPenalty: 1.3 }],
  ])('seeded, %s: the top log-probabilities are the sampler\'s distribution', async (_name, o: GenerateOptions) => {
    const chunks = await chunksOf('hello world', { ...o, seed: 11, maxTokens: 24, topLogprobs: 5 });
    const plain = await chunksOf('hello world', { ...o, seed: 11, maxTokens: 24 });
    expect(chunks.map((c) => [c.tokenId, c.logprob])).toEqual(plain.map((c) => [c.tokenId, c.logprob])); // asking changes nothing
    let found = 0;
    for (const c of chunks) {
      const top = c.topLogprobs!;
      expect(top.length).toBeGreaterThanOrEqual(1);
      expect(top.length).toBeLessThanOrEqual(o.topK ?? 5);
      for (let k = 1; k < top.length; ++k) expect(top[k].logprob).toBeLessThanOrEqual(top[k - 1].logprob);
      const mass = top.reduce((a, t) => a + Math.exp(t.logprob), 0);
      expect(mass).toBeLessThanOrEqual(1 + 1e-5);
      if (o.topK === 3 && top.length === 3) expect(mass).toBeCloseTo(1, 5);
      const mine = top.find((t) => t.tokenId === c.tokenId);
      if (mine) { ++found; expect(mine.logprob).toBeCloseTo(c.logprob, 5); }
      else expect(c.logprob).toBeLessThanOrEqual(top[top.length - 1].logprob + 1e-6);
    }
    expect(found).toBeGreaterThan(0);

    // the server: the same values, streamed or not
    const body = { prompt: 'hello world', max_tokens: 24, seed: 11, logprobs: 5, temperature: o.temperature, top_k: o.topK, top_p: o.topP, min_p: o.minP, repetition_penalty: o.repetitionPenalty };
    const whole = ((await (await post(body)).json()) as Completion).choices[0].logprobs as Lp;
    expect(whole.token_logprobs).toEqual(chunks.map((c) => c.logprob));
    chunks.forEach((c, i) => {
      const want: Record<string, number> = {};
      for (const t of c.topLogprobs!) { const k = model.tokenizer!.decode([t.tokenId]); if (!(k in want)) want[k] = t.logprob; }
      const k = model.tokenizer!.decode([c.tokenId]);
      if (!(k in want)) want[k] = c.logprob;
      expect(whole.top_logprobs[i]).toEqual(want);
    });
    const streamed = events(await (await post({ ...body, stream: true })).text());
    const parts = streamed.chunks.filter((e) => e.choices[0].logprobs).map((e) => e.choices[0].logprobs as Lp);
    expect(parts.map((p) => p.token_logprobs[0])).toEqual(whole.token_logprobs);
    expect(parts.map((p) => p.top_logprobs[0])).toEqual(whole.top_logprobs);
    expect(parts.map((p) => p.text_offset[0])).toEqual(whole.text_offset);
  });

  test('logprobs 0 or null is off; 6 is a 400', async () => {
    for (const logprobs of [0, null]) expect(((await (await post({ prompt: 'hi', max_tokens: 2, logprobs })).json()) as Completion).choices[0].logprobs).toBeNull();
    expect((await post({ prompt: 'hi', logprobs: 6 })).status).toBe(400);
    await expect(model.complete('hi', { topLogprobs: 21 })).rejects.toThrow(/topLogprobs/);
  });
});

// ---- slow and stalled clients ----

test('a client that sends its headers byte by byte is cut off at the headers timeout', async () => {
  const { port } = new URL(base);
  const sock = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const t0 = Date.now();
  let received = '';
  sock.on('data', (d) => { received += d.toString(); });
  const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now() - t0)));
  sock.on('error', () => {});
  const req = `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`;
  let i = 0;
  const timer = setInterval(() => { if (!sock.destroyed && i < req.length) sock.write(req[i++]); }, 20);
  const ms = await closed;
  clearInterval(timer);
  expect(i).toBeLessThan(req.length); // it never got to send the whole request
  expect(ms).toBeGreaterThanOrEqual(250);
  expect(ms).toBeLessThan(3000);
  expect(received === '' || /^HTTP\/1\.1 408/.test(received)).toBe(true);
});

describe('a streaming client that stops reading', () => {
  // a socket that accepts 16 bytes and then never drains
  const stalled = (): Writable & { destroyed: boolean } => new Writable({ highWaterMark: 16, write(_c, _e, _cb) { /* never done */ } });
  test('is cut off once too much is queued', () => {
    const res = stalled();
    const w = guardedWriter(res as unknown as ServerResponse, { maxBufferBytes: 100, stallTimeoutMs: 60_000 });
    for (let i = 0; i < 10 && !res.destroyed; ++i) w.write('x'.repeat(30));
    expect(res.destroyed).toBe(true);
    w.done();
  });
  test('is cut off once backed up for the stall timeout', async () => {
    const res = stalled();
    const w = guardedWriter(res as unknown as ServerResponse, { maxBufferBytes: 1 << 20, stallTimeoutMs: 50 });
    w.write('x'.repeat(40)); // over the high-water mark: backed up
    expect(res.destroyed).toBe(false);
    await new Promise((r) => setTimeout(r, 120));
    expect(res.destroyed).toBe(true);
  });
  test('a reading client is left alone', async () => {
    const res = new Writable({ highWaterMark: 16, write(_c, _e, cb) { setTimeout(cb, 5); } });
    const w = guardedWriter(res as unknown as ServerResponse, { maxBufferBytes: 1000, stallTimeoutMs: 50 });
    for (let i = 0; i < 10; ++i) { w.write('x'.repeat(40)); await new Promise((r) => setTimeout(r, 10)); }
    await new Promise((r) => setTimeout(r, 100));
    expect(res.destroyed).toBe(false);
    w.done();
  });
});

// ---- drain ----

describe('drain (graceful shutdown)', () => {
  // each test drains (and closes) a server of its own over the same model
  async function server(opts: Parameters<typeof createServer>[1]): Promise<{ srv: FastifyInstance; url: string }> {
    const srv = createServer(model, { modelName: 'tiny', maxBatch: 4, ...opts });
    return { srv, url: await srv.listen({ port: 0, host: '127.0.0.1' }) };
  }
  async function startStream(url: string, body: Record<string, unknown>): Promise<{ rest: Promise<string> }> {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    const reader = r.body!.getReader();
    const first = await reader.read(); // it is running
    const dec = new TextDecoder();
    let text = dec.decode(first.value, { stream: true });
    const rest = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += dec.decode(value, { stream: true });
      }
    })();
    return { rest };
  }

  test('streams in flight finish; new requests get 503, /health says draining; every slot comes back', async () => {
    const { srv, url } = await server({});
    const streams = await Promise.all([1, 2].map((seed) => startStream(url, { prompt: [104], max_tokens: 1500, temperature: 1, seed })));
    expect(model.load.running).toBe(2);
    const drained = drain(srv, 30_000);
    const h = await fetch(`${url}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toMatchObject({ status: 'draining' });
    const refused = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x' }) });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { type: 'server_error', code: 'server_shutting_down' } });
    for (const s of streams) {
      const { chunks, done } = events(await s.rest);
      expect(done).toBe(true);
      expect(chunks[chunks.length - 1].choices[0].finish_reason).not.toBe('abort');
    }
    expect(await drained).toEqual({ finished: 2, aborted: 0 });
    expect(model.load).toMatchObject({ running: 0, waiting: 0, freeSlots: 4 });
    await expect(fetch(`${url}/health`)).rejects.toThrow(); // closed
  });

  test('streams still running at the timeout are aborted and their slots freed', async () => {
    const { srv, url } = await server({ maxTokens: 1_000_000 });
    const streams = await Promise.all([1, 2, 3].map((seed) => startStream(url, { prompt: [104], max_tokens: 1_000_000, temperature: 1, seed })));
    // and one not streamed
    const whole = fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: [105], max_tokens: 1_000_000, temperature: 1, seed: 4 }) });
    for (let i = 0; i < 100 && model.load.running < 4; ++i) await new Promise((r) => setTimeout(r, 10));
    expect(model.load.running).toBe(4);
    const t0 = Date.now();
    expect(await drain(srv, 300)).toEqual({ finished: 0, aborted: 4 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    for (const s of streams) {
      const { chunks, done } = events(await s.rest);
      expect(done).toBe(true);
      expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('abort');
    }
    expect(((await (await whole).json()) as Completion).choices[0].finish_reason).toBe('abort');
    expect(model.load).toMatchObject({ running: 0, waiting: 0, freeSlots: 4 });
  });
});

test('logs: fastify\'s pino logger at the given level; off by default', async () => {
  const srv = createServer(model, { maxBatch: 4, log: 'warn' });
  expect(srv.log.level).toBe('warn');
  await srv.close();
  expect([undefined, 'silent']).toContain(app.log.level);
  expect(() => createServer(model, { headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).toThrow(/headersTimeoutMs/);
  expect(() => createServer(model, { apiKeys: [''] })).toThrow(/API key/);
});

describe('a diffusion model', () => {
  let dtmp: string;
  let llada: LladaLM;
  let dapp: FastifyInstance;
  let durl: string;
  beforeAll(async () => {
    dtmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-prod-llada-'));
    const V = FIXTURE_VOCAB + 4;
    await writeLladaCheckpoint(dtmp, { D: 32, H: 2, KVH: 1, L: 2, F: 48, V, maskId: V - 1, dtype: 'f32' });
    llada = await loadModel(dtmp, { kind: 'diffusion' });
    dapp = createServer(llada, { modelName: 'tiny-llada', apiKeys: ['k'] });
    durl = await dapp.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await dapp.close();
    llada.dispose();
    fs.rmSync(dtmp, { recursive: true, force: true });
  });

  test('keys, /v1/models and metrics (requests, tokens, durations) as for a language model', async () => {
    const h = { 'content-type': 'application/json', authorization: 'Bearer k' };
    expect((await fetch(`${durl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"hi"}' })).status).toBe(401);
    expect(((await (await fetch(`${durl}/v1/models`, { headers: h })).json()) as { data: { id: string }[] }).data[0].id).toBe('tiny-llada');
    const r = await fetch(`${durl}/v1/completions`, { method: 'POST', headers: h, body: JSON.stringify({ prompt: 'hello', max_tokens: 8, block_length: 4, steps: 4 }) });
    const j = (await r.json()) as Completion;
    const s = await fetch(`${durl}/v1/completions`, { method: 'POST', headers: h, body: JSON.stringify({ prompt: 'hello', max_tokens: 8, block_length: 4, steps: 4, stream: true }) });
    expect(events(await s.text()).done).toBe(true);
    const { samples } = parsePrometheus(await (await fetch(`${durl}/metrics`, { headers: h })).text());
    const get = (n: string, l: Record<string, string> = {}): number => samples.filter((x) => x.name === n && Object.entries(l).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
    expect(get('mambakit_http_requests_total', { route: '/v1/completions', status: '200' })).toBe(2);
    expect(get('mambakit_http_requests_total', { route: '/v1/completions', status: '401' })).toBe(1);
    expect(get('mambakit_prompt_tokens_total')).toBe(2 * j.usage.prompt_tokens);
    expect(get('mambakit_completion_tokens_total')).toBe(2 * j.usage.completion_tokens);
    expect(get('mambakit_generations_total', { finish_reason: 'length' })).toBe(2);
    expect(get('mambakit_time_to_first_token_seconds_count')).toBe(2);
    expect(get('mambakit_http_request_duration_seconds_count', { route: '/v1/completions' })).toBe(3);
    expect(get('mambakit_free_slots')).toBe(1);
  });
});
