// MMaDA images end to end on random weights in the published layouts (a tiny MMaDA and a tiny MAGVIT-v2):
// generateImage = MaskGIT's codes decoded by the image tokenizer into a PNG, understand = the image's codes in
// the mmu prompt answered by the text sampler, and `mambakit t2i` / `mambakit understand` writing the same.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { LladaLM, loadModel } from '../../lib';
import { writeTinyMmada } from '../helpers/mmada-ckpt';

const ROOT = path.join(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-mmada-img-'));
const lm = path.join(tmp, 'mmada'), vq = path.join(tmp, 'magvit');
let model: LladaLM;

beforeAll(async () => {
  await writeTinyMmada(lm, vq);
  model = await loadModel(lm, { kind: 'diffusion', imageTokenizer: vq });
}, 120000);
afterAll(() => {
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('generateImage: the deterministic MaskGIT codes decoded to a PNG of the grid', async () => {
  const opts = { steps: 3, guidance: 1, deterministic: true, maxTextLen: 8 };
  const img = await model.generateImage('a red fox', opts);
  const it = model.imageTokens(['a red fox'], opts);
  let codes: Int32Array | undefined;
  for (;;) { const s = await it.next(); if (s.done) { codes = s.value.codes; break; } }
  expect(Array.from(img.codes)).toEqual(Array.from(codes));
  expect([img.height, img.width, img.nfe]).toEqual([4, 4, 3]);
  const meta = await sharp(img.png).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['png', 16, 16]);
  const [png] = await model.imageTokenizer!.decodeToPng(img.codes, 1, 4, 4);
  expect(img.png.equals(png)).toBe(true);
  // previews: one PNG per step
  const steps = [];
  for await (const s of model.imageSteps(['a red fox'], { ...opts, previews: true })) steps.push(s.previews?.length);
  expect(steps).toEqual([1, 1, 1]);
});

test('understand: the image codes in the mmu prompt, answered by the text sampler', async () => {
  const { png } = await model.generateImage('x', { steps: 1, deterministic: true, maxTextLen: 4 });
  const opts = { genLength: 8, blockLength: 4, steps: 4 };
  const answer = await model.understand(png, 'what is it?', opts);
  const { codes } = await model.imageTokenizer!.encodeImages([png], { resolution: 16 });
  const expected = await model.generate(model.understandingPrompt(Array.from(codes), 'what is it?'), opts);
  expect(answer.ids).toEqual(expected.ids);
  expect(answer.usage.promptTokens).toBe(2 + 16 + 1 + model.tokenizer!.encode('what is it?').length);
  await expect(model.understand(Buffer.from('not an image'), 'q', opts)).rejects.toMatchObject({ code: 'E_FORMAT' });
});

test('mambakit t2i and mambakit understand', async () => {
  const cli = path.join(ROOT, 'dist/lib/cli/main.js');
  const out = path.join(tmp, 'out.png');
  const r = spawnSync(process.execPath, [cli, 't2i', '--model', lm, '--vq', vq, '--steps', '2', '--deterministic', '--guidance', '0', 'a red fox', '-o', out], { encoding: 'utf8' });
  expect(r.stderr).toMatch(/out\.png, 4×4 codes, 2 forward passes/);
  expect(r.status).toBe(0);
  const img = await model.generateImage('a red fox', { steps: 2, deterministic: true, guidance: 0 });
  expect(fs.readFileSync(out).equals(img.png)).toBe(true);
  const u = spawnSync(process.execPath, [cli, 'understand', '--model', lm, '--vq', vq, '--gen-length', '8', '--block-length', '4', '--steps', '4', out, 'what is it?'], { encoding: 'utf8' });
  expect(u.status).toBe(0);
  const ans = await model.understand(out, 'what is it?', { genLength: 8, blockLength: 4, steps: 4 });
  expect(u.stdout).toBe(`${ans.text}\n`);
  const bad = spawnSync(process.execPath, [cli, 't2i', '--model', lm, 'x', '-o', out], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/usage: mambakit t2i/);
}, 120000);
