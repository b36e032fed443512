// `mambakit serve` over a mamba_vlm checkpoint, loopback with fetch: /v1/completions with the extension
// field `image` (base64 PNG, or a data: URL) answers what model.complete({ image, prompt }) returns, streamed
// or not, batched with other requests; bodies up to 16 MiB; a bad image or prompt is a 400; text-only works.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';

import { MambaVLM, createServer, loadVisionLanguageModel } from '../../lib';
import { randInt } from '../helpers/random';
import { MERGES } from '../helpers/tokenizer-fixture';
import { VlmShape, randomVlmWeights, writeVlmCheckpoint } from '../helpers/vlm-ckpt';

const FIXTURE_VOCAB = 256 + MERGES.length + 1;
const S: VlmShape = {
  vision: { depths: [1, 1], dims: [8, 12], numClasses: 3 }, projector: 'mlp2x_gelu', imageTokenId: FIXTURE_VOCAB, imageSize: 32, imageModality: 'image',
  text: { D: 32, L: 2, V: FIXTURE_VOCAB + 2, N: 6, expand: 2, K: 4, mom: { M: 2, specific: ['in_proj', 'out_proj'], names: ['text', 'image'] } },
};

let tmp: string;
let model: MambaVLM;
let app: FastifyInstance;
let base: string;
let png: Buffer;

const randomPng = (w: number, h: number): Promise<Buffer> =>
  sharp(Buffer.from(randInt(w * h * 3, 256).map((x) => x & 255)), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();

const post = (body: unknown): Promise<Response> =>
  fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
interface Completion { choices: { text: string; finish_reason: string | null }[]; usage: { prompt_tokens: number; completion_tokens: number } }
const events = async (r: Response): Promise<Completion[]> => {
  const ev = (await r.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  expect(ev[ev.length - 1]).toBe('[DONE]');
  return ev.slice(0, -1).map((e) => JSON.parse(e) as Completion);
};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-vlm-serve-'));
  await writeVlmCheckpoint(tmp, S, randomVlmWeights(S), { tokenizer: true });
  model = await loadVisionLanguageModel(tmp);
  app = createServer(model, { modelName: 'tiny-vlm', maxPromptTokens: 128 });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  png = await randomPng(45, 37);
});
afterAll(async () => {
  await app.close();
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('an image (base64 or a data: URL) with the prompt: the text of model.complete, streamed token by token', async () => {
  const prompt = 'what is <image> here';
  const expected = await model.complete({ image: png, prompt }, { temperature: 0, maxTokens: 8 });
  const r = await post({ prompt, image: png.toString('base64'), max_tokens: 8, temperature: 0 });
  expect(r.status).toBe(200);
  const j = (await r.json()) as Completion;
  expect(j.choices[0].text).toBe(expected.text);
  expect(j.usage.prompt_tokens).toBe(expected.usage.promptTokens);
  expect(j.usage.prompt_tokens).toBe(model.tokenize(prompt).length - 1 + model.imageTokens);

  const s = await post({ prompt, image: `data:image/png;base64,${png.toString('base64')}`, max_tokens: 8, temperature: 0, stream: true });
  expect(s.headers.get('content-type')).toMatch(/text\/event-stream/);
  const chunks = await events(s);
  expect(chunks.length).toBeGreaterThan(1);
  expect(chunks.map((c) => c.choices[0].text).join('')).toBe(expected.text);
  expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe(expected.finishReason);
});

test('concurrent image and text requests: each answers as alone', async () => {
  const other = await randomPng(20, 50);
  const seeded = { max_tokens: 6, temperature: 1.2, seed: 5 };
  const alone = [
    await model.complete({ image: png, prompt: '<image> one' }, { maxTokens: 6, temperature: 1.2, seed: 5 }),
    await model.complete({ image: other, prompt: 'two' }, { maxTokens: 6, temperature: 1.2, seed: 5 }),
    await model.complete({ prompt: 'three' }, { maxTokens: 6, temperature: 1.2, seed: 5 }),
  ];
  const rs = await Promise.all([
    post({ prompt: '<image> one', image: png.toString('base64'), ...seeded }),
    post({ prompt: 'two', image: other.toString('base64'), ...seeded, stream: true }),
    post({ prompt: 'three', ...seeded }),
  ]);
  expect(((await rs[0].json()) as Completion).choices[0].text).toBe(alone[0].text);
  expect((await events(rs[1])).map((c) => c.choices[0].text).join('')).toBe(alone[1].text);
  expect(((await rs[2].json()) as Completion).choices[0].text).toBe(alone[2].text);
});

test('bodies above 1 MiB are accepted on this route (up to 16 MiB)', async () => {
  const big = await randomPng(700, 600); // noise does not compress: ~1.2 MiB, 1.6 MiB as base64
  expect(big.length).toBeGreaterThan(1 << 20);
  const r = await post({ prompt: [1, 2], image: big.toString('base64'), max_tokens: 2 });
  expect(r.status).toBe(200);
  expect(((await r.json()) as Completion).usage.prompt_tokens).toBe(2 + model.imageTokens);
});

test('a bad image or prompt is a 400 naming it; the server reads no paths', async () => {
  const msg = async (r: Response): Promise<string> => {
    expect(r.status).toBe(400);
    return ((await r.json()) as { error: { message: string } }).error.message;
  };
  expect(await msg(await post({ prompt: 'hi', image: 'not base64!' }))).toMatch(/image: not a base64 string/);
  expect(await msg(await post({ prompt: 'hi', image: Buffer.from('plain text').toString('base64') }))).toMatch(/cannot decode as an image/);
  expect(await msg(await post({ prompt: 'hi', image: path.join(tmp, 'config.json') }))).toMatch(/image: not a base64 string|cannot decode as an image/);
  expect(await msg(await post({ prompt: '<image> and <image>', image: png.toString('base64') }))).toMatch(/2 image placeholders/);
  expect(await msg(await post({ prompt: 'where is <image>?' }))).toMatch(/no image was given/);
  expect(await msg(await post({ prompt: 'hi', image: 42 }))).toMatch(/image/);
  expect(await msg(await post({ prompt: 'x'.repeat(200), image: png.toString('base64') }))).toMatch(/prompt is \d+ tokens, the limit is 128/);
  expect((await (await fetch(`${base}/health`)).json())).toMatchObject({ status: 'ok', model: 'tiny-vlm', running: 0 });
});
