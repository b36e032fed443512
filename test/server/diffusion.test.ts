// The server over a LLaDA checkpoint, loopback with fetch: completions equal model.generate, streaming
// sends the final text block by block and adds up to the same text, bad sampler options are 400s.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FastifyInstance } from 'fastify';

import { LladaLM, createServer, loadModel } from '../../lib';
import { FIXTURE_VOCAB, writeLladaCheckpoint } from '../helpers/llada-ckpt';

let tmp: string;
let model: LladaLM;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-diffuse-serve-'));
  const V = FIXTURE_VOCAB + 4;
  await writeLladaCheckpoint(tmp, { D: 32, H: 2, KVH: 1, L: 2, F: 48, V, maskId: V - 1, dtype: 'f32' });
  model = await loadModel(tmp, { kind: 'diffusion' });
  app = createServer(model, { modelName: 'tiny-llada', maxQueue: 2, maxPromptTokens: 64 });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (body: unknown) =>
  fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('GET /health says it serves a diffusion model', async () => {
  expect(await (await fetch(`${base}/health`)).json()).toMatchObject({ status: 'ok', model: 'tiny-llada', kind: 'diffusion', running: 0 });
});

test('POST /v1/completions returns model.generate()\'s text; streaming sends it block by block', async () => {
  const opts = { genLength: 16, blockLength: 4, steps: 8, cache: 'dual' as const };
  const expected = await model.generate('hello world', opts);
  const body = { prompt: 'hello world', max_tokens: 16, block_length: 4, steps: 8, cache: 'dual' };
  const r = await post(body);
  expect(r.status).toBe(200);
  const j = (await r.json()) as { choices: { text: string; tokens: number[]; finish_reason: string }[]; usage: Record<string, number> };
  expect(j.choices[0].text).toBe(expected.text);
  expect(j.choices[0].tokens).toEqual(expected.tokens);
  expect(j.usage.forward_passes).toBe(expected.nfe);

  const s = await post({ ...body, stream: true });
  expect(s.headers.get('content-type')).toMatch(/text\/event-stream/);
  const events = (await s.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  expect(events[events.length - 1]).toBe('[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { text: string; finish_reason: string | null }[] });
  expect(chunks.map((c) => c.choices[0].text).join('')).toBe(expected.text);
  expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('length');
});

test('bad sampler options are 400s naming the rule', async () => {
  const r = await post({ prompt: 'hi', max_tokens: 10, block_length: 4 });
  expect(r.status).toBe(400);
  expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/genLength 10 is not a multiple of blockLength 4/);
  expect((await post({ prompt: 'hi', cache: 'full' })).status).toBe(400);
  expect((await post({ prompt: 'hi', threshold: 0 })).status).toBe(400);
  expect((await post({ prompt: [1, 2, 999999] })).status).toBe(400);
});
