// The HTTP server over loopback with a real client (fetch): completions, SSE streaming, 4xx for
// malformed requests, 429 when the queue is full, client disconnect = abort.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FastifyInstance } from 'fastify';

import { MambaLM, createServer, loadLanguageModel } from '../../lib';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { EOS, MERGES, byteLevelTokenizerJson } from '../helpers/tokenizer-fixture';

const S: MambaShape = { D: 32, L: 2, V: 256 + MERGES.length + 1, N: 8, expand: 2, K: 4 };
let tmp: string;
let model: MambaLM;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-serve-'));
  await writeMambaCheckpoint(tmp, S, randomMambaWeights(S));
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
  fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify({ eos_token: EOS }));
  model = await loadLanguageModel(tmp);
  app = createServer(model, { modelName: 'tiny', maxBatch: 4, maxQueue: 2, maxPromptTokens: 64 });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (body: unknown, init: RequestInit = {}) =>
  fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

test('GET /health', async () => {
  const r = await fetch(`${base}/health`);
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ status: 'ok', model: 'tiny', running: 0, waiting: 0 });
});

test('POST /v1/completions returns the same text as model.complete()', async () => {
  const expected = await model.complete('hello world', { temperature: 0, maxTokens: 10 });
  const r = await post({ prompt: 'hello world', max_tokens: 10, temperature: 0 });
  expect(r.status).toBe(200);
  const j = (await r.json()) as { object: string; model: string; choices: { text: string; finish_reason: string }[]; usage: Record<string, number> };
  expect(j).toMatchObject({ object: 'text_completion', model: 'tiny' });
  expect(j.choices[0].text).toBe(expected.text);
  expect(j.choices[0].finish_reason).toBe(expected.finishReason);
  expect(j.usage.completion_tokens).toBe(expected.tokens.length);
});

test('stream: true sends server-sent events that add up to the same text, then [DONE]', async () => {
  const expected = await model.complete([104, 101], { temperature: 0, maxTokens: 12 });
  const r = await post({ prompt: [104, 101], max_tokens: 12, temperature: 0, stream: true });
  expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
  const events = (await r.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  expect(events[events.length - 1]).toBe('[DONE]');
  const parsed = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { text: string; finish_reason: string | null }[] });
  expect(parsed.map((p) => p.choices[0].text).join('')).toBe(expected.text);
  expect(parsed[parsed.length - 1].choices[0].finish_reason).toBe(expected.finishReason);
});

test.each([
  ['bad JSON', '{"prompt": "x",'],
  ['negative max_tokens', { prompt: 'x', max_tokens: -1 }],
  ['temperature NaN (as a string)', { prompt: 'x', temperature: 'NaN' }],
  ['top_p 0', { prompt: 'x', top_p: 0 }],
  ['missing prompt', { max_tokens: 3 }],
  ['empty prompt', { prompt: '' }],
  ['unknown field', { prompt: 'x', frobnicate: 1 }],
  ['an image for a language model (only a vision-language model takes one)', { prompt: 'x', image: 'aGVsbG8=' }],
  ['token id out of the vocabulary', { prompt: [S.V + 5] }],
  ['prompt over the context limit', { prompt: Array.from({ length: 65 }, () => 104) }],
])('400 for %s, with a message', async (_name, body) => {
  const r = await post(body);
  expect(r.status).toBe(400);
  const j = (await r.json()) as { error: { message: string } };
  expect(j.error.message.length).toBeGreaterThan(0);
});

test('a full queue answers 429; every slot comes back', async () => {
  // 4 free slots + 2 queue places: 6 of 12 simultaneous long requests are taken, the rest refused
  const rs = await Promise.all(Array.from({ length: 12 }, () => post({ prompt: [104], max_tokens: 200, temperature: 1, seed: 3 })));
  const codes = rs.map((r) => r.status);
  expect(codes.filter((c) => c === 200).length).toBe(6);
  expect(codes.filter((c) => c === 429).length).toBe(6);
  await Promise.all(rs.map((r) => r.text()));
  expect(model.load).toMatchObject({ running: 0, waiting: 0, freeSlots: 4 });
});

test('a client that disconnects aborts its request and frees the slot', async () => {
  const ac = new AbortController();
  const r = await post({ prompt: [104], max_tokens: 2000, stream: true, seed: 1, temperature: 1 }, { signal: ac.signal });
  const reader = r.body!.getReader();
  await reader.read(); // the stream has started
  expect(model.load.running).toBe(1);
  ac.abort();
  for (let i = 0; i < 100 && model.load.running > 0; ++i) await new Promise((res) => setTimeout(res, 10));
  expect(model.load).toMatchObject({ running: 0, waiting: 0 });
});
