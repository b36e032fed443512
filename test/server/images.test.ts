// POST /v1/images/generations and image understanding on /v1/completions, over loopback with fetch, on a
// tiny MMaDA (random weights, MMaDA's vocabulary layout) with a tiny MAGVIT-v2 tokenizer (4×4 codes ↔ 16×16
// pixels): the images equal model.imageSteps's PNGs byte for byte, the answers model.understand's, the
// OpenAI-shaped 400s, the queue shared with the completions (429), a disconnect aborts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';

import { LladaLM, MambaLM, createServer, loadLanguageModel, loadModel } from '../../lib';
import { writeTinyMmada } from '../helpers/mmada-ckpt';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-images-serve-'));
const lm = path.join(tmp, 'mmada'), vq = path.join(tmp, 'magvit');
let model: LladaLM;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  await writeTinyMmada(lm, vq);
  model = await loadModel(lm, { kind: 'diffusion', imageTokenizer: vq });
  // maxQueue 0: one request runs, none waits
  app = createServer(model, { modelName: 'tiny-mmada', maxQueue: 0, maxPromptTokens: 64, processMetrics: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
}, 120000);
afterAll(async () => {
  await app?.close();
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (route: string, body: unknown, init: RequestInit = {}) =>
  fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });
const images = (body: unknown, init?: RequestInit) => post('/v1/images/generations', body, init);
type ImagesBody = { created: number; data: { b64_json: string }[]; usage: { forward_passes: number } };
const errorOf = async (r: Response) => ((await r.json()) as { error: { message: string; type: string } }).error;

test('one image: a 16×16 PNG, byte for byte model.generateImage\'s (deterministic)', async () => {
  const r = await images({ prompt: 'a red fox', size: '16x16', response_format: 'b64_json', user: 'u1', steps: 3, guidance: 1, deterministic: true });
  expect(r.status).toBe(200);
  const j = (await r.json()) as ImagesBody;
  expect(j.data).toHaveLength(1);
  expect(Math.abs(j.created - Date.now() / 1000)).toBeLessThan(60);
  const png = Buffer.from(j.data[0].b64_json, 'base64');
  const meta = await sharp(png).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['png', 16, 16]);
  const img = await model.generateImage('a red fox', { steps: 3, guidance: 1, deterministic: true });
  expect(png.equals(img.png)).toBe(true);
  expect(j.usage.forward_passes).toBe(img.nfe);
});

test('n = 2: one batch of the prompt twice under one seed, the images differ; deterministic ones are equal', async () => {
  const opts = { steps: 3, guidance: 1.5, temperature: 1, seed: 11 };
  const j = (await (await images({ prompt: 'a red fox', n: 2, ...opts })).json()) as ImagesBody;
  expect(j.data).toHaveLength(2);
  const pngs = j.data.map((d) => Buffer.from(d.b64_json, 'base64'));
  const it = model.imageSteps(['a red fox', 'a red fox'], opts);
  let s = await it.next();
  while (!s.done) s = await it.next();
  expect(pngs.map((p, i) => p.equals(s.value[i].png))).toEqual([true, true]);
  expect(pngs[0].equals(pngs[1])).toBe(false);
  const d = (await (await images({ prompt: 'a red fox', n: 2, steps: 2, deterministic: true })).json()) as ImagesBody;
  expect(d.data[0].b64_json).toBe(d.data[1].b64_json);
});

test.each([
  ['a size the model does not make', { prompt: 'x', size: '512x512' }, /makes 16x16 images only/],
  ['url format', { prompt: 'x', response_format: 'url' }, /serves no URLs/],
  ['n = 0', { prompt: 'x', n: 0 }, /n/],
  ['n = 9', { prompt: 'x', n: 9 }, /n/],
  ['a missing prompt', { n: 1 }, /prompt/],
  ['an empty prompt', { prompt: '' }, /prompt/],
  ['token ids as the prompt', { prompt: [1, 2] }, /prompt/],
  ['an unknown field', { prompt: 'x', quality: 'hd' }, /additional/],
  ['steps 0', { prompt: 'x', steps: 0 }, /steps/],
])('images: 400 for %s, OpenAI-shaped', async (_name, body, message) => {
  const r = await images(body);
  expect(r.status).toBe(400);
  const e = await errorOf(r);
  expect(e.type).toBe('invalid_request_error');
  expect(e.message).toMatch(message);
});

test('images: bad JSON is a 400', async () => {
  const r = await fetch(`${base}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt": ' });
  expect(r.status).toBe(400);
});

test('without an image tokenizer: 400 on both routes', async () => {
  const tok = model.imageTokenizer;
  model.imageTokenizer = null;
  try {
    const r = await images({ prompt: 'x' });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).message).toMatch(/has no image tokenizer/);
    const png = (await tok!.decodeToPng(new Int32Array(16), 1, 4, 4))[0];
    const u = await post('/v1/completions', { prompt: 'what?', image: png.toString('base64'), max_tokens: 4 });
    expect(u.status).toBe(400);
    expect((await errorOf(u)).message).toMatch(/has no image tokenizer/);
  } finally {
    model.imageTokenizer = tok;
  }
});

test('understanding: /v1/completions with image returns model.understand\'s answer', async () => {
  const { png } = await model.generateImage('x', { steps: 1, deterministic: true });
  const opts = { genLength: 8, blockLength: 4, steps: 4, seed: 5, temperature: 0.5 };
  const expected = await model.understand(png, 'what is it?', opts);
  for (const image of [png.toString('base64'), `data:image/png;base64,${png.toString('base64')}`]) {
    const r = await post('/v1/completions', { prompt: 'what is it?', image, max_tokens: 8, block_length: 4, steps: 4, seed: 5, temperature: 0.5 });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { choices: { text: string; tokens: number[] }[]; usage: Record<string, number> };
    expect(j.choices[0].text).toBe(expected.text);
    expect(j.choices[0].tokens).toEqual(expected.tokens);
    expect(j.usage).toMatchObject({ prompt_tokens: expected.usage.promptTokens, forward_passes: expected.nfe });
  }
  // a JPEG too, and an image above the default 1 MiB body limit (a big noisy PNG, resized by the tokenizer)
  const jpeg = await sharp(png).jpeg().toBuffer();
  expect((await post('/v1/completions', { prompt: 'q', image: jpeg.toString('base64'), max_tokens: 4 })).status).toBe(200);
  const W = 700, noise = Buffer.alloc(W * W * 3);
  for (let i = 0; i < noise.length; ++i) noise[i] = (i * 2654435761) >>> 24;
  const big = await sharp(noise, { raw: { width: W, height: W, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  expect(big.length).toBeGreaterThan(1 << 20);
  const r = await post('/v1/completions', { prompt: 'q', image: big.toString('base64'), max_tokens: 4 });
  expect(r.status).toBe(200);
  expect(((await r.json()) as { choices: { text: string }[] }).choices[0].text).toBe((await model.understand(big, 'q', { genLength: 4 })).text);
});

test.each([
  ['bad base64', '!!!not base64!!!', /not a base64 string/],
  ['base64 of something that is not an image', Buffer.from('not an image at all').toString('base64'), /cannot decode as an image/],
])('understanding: 400 for %s', async (_name, image, message) => {
  const r = await post('/v1/completions', { prompt: 'q', image, max_tokens: 4 });
  expect(r.status).toBe(400);
  expect((await errorOf(r)).message).toMatch(message);
  const s = await post('/v1/completions', { prompt: 'q', image: 'AAAA', stream: true });
  expect(s.status).toBe(400);
});

test('one queue for both routes: 429 while one runs (maxQueue 0); a disconnect aborts it', async () => {
  const health = async () => (await (await fetch(`${base}/health`)).json()) as { running: number; waiting: number };
  const ac = new AbortController();
  const long = images({ prompt: 'a long one', steps: 4096, guidance: 1.5 }, { signal: ac.signal }).catch((e: Error) => e);
  for (let i = 0; i < 200 && (await health()).running === 0; ++i) await new Promise((res) => setTimeout(res, 10));
  expect(await health()).toMatchObject({ running: 1, waiting: 0 });
  const busy = await images({ prompt: 'x', steps: 1 });
  expect(busy.status).toBe(429);
  expect((await errorOf(busy)).type).toBe('rate_limit_error');
  expect((await post('/v1/completions', { prompt: 'hi', max_tokens: 4 })).status).toBe(429);
  ac.abort();
  expect(await long).toMatchObject({ name: 'AbortError' });
  for (let i = 0; i < 500 && (await health()).running > 0; ++i) await new Promise((res) => setTimeout(res, 10));
  expect(await health()).toMatchObject({ running: 0, waiting: 0 });
  expect((await images({ prompt: 'x', steps: 1 })).status).toBe(200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toMatch(/mambakit_images_generated_total\{finish_reason="abort"\} 1/);
  expect(metrics).toMatch(/mambakit_http_requests_total\{route="\/v1\/images\/generations",method="POST",status="429"\} 1/);
  expect(metrics).toMatch(/mambakit_images_generated_total\{finish_reason="length"\} \d+/);
}, 60000);

test('a language model has no image route: 404', async () => {
  const S: MambaShape = { D: 16, L: 1, V: 64, N: 4, expand: 2, K: 4 };
  const dir = path.join(tmp, 'mamba');
  await writeMambaCheckpoint(dir, S, randomMambaWeights(S));
  const mamba: MambaLM = await loadLanguageModel(dir);
  const a = createServer(mamba, { processMetrics: false });
  try {
    const u = await a.listen({ port: 0, host: '127.0.0.1' });
    const r = await fetch(`${u}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x' }) });
    expect(r.status).toBe(404);
    expect((await errorOf(r)).type).toBe('invalid_request_error');
  } finally {
    await a.close();
    mamba.dispose();
  }
});
