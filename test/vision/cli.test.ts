// `mambakit classify` prints what classify() returns; bad input exits 1 with the error's code.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { loadClassifier } from '../../lib';
import { randomMambaOutWeights, writeMambaOutCheckpoint } from '../helpers/mambaout-ckpt';

const ROOT = path.join(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/lib/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-classify-'));
const shape = { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32], numClasses: 1000 };
const a = path.join(tmp, 'a.png'), b = path.join(tmp, 'b.jpg');

beforeAll(async () => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }); // the CLI runs from dist/
  await writeMambaOutCheckpoint(path.join(tmp, 'm'), shape, randomMambaOutWeights(shape));
  await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toFile(a);
  await sharp({ create: { width: 64, height: 100, channels: 3, background: { r: 20, g: 30, b: 230 } } }).jpeg().toFile(b);
}, 120000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('classify --json prints the top classes of each image, as classify() returns them', async () => {
  const out = execFileSync(process.execPath, [CLI, 'classify', '--model', path.join(tmp, 'm'), '--top-k', '3', '--json', a, b], { encoding: 'utf8' });
  const model = await loadClassifier(path.join(tmp, 'm'));
  const expected = await model.classify([a, b], { topK: 3 });
  const got = JSON.parse(out) as { image: string; top: { label: string; index: number; probability: number }[] }[];
  expect(got.map((g) => g.image)).toEqual([a, b]);
  got.forEach((g, i) => {
    expect(g.top.map((r) => r.index)).toEqual(expected[i].map((r) => r.index));
    expect(g.top.map((r) => r.label)).toEqual(expected[i].map((r) => r.label));
  });
  const text = execFileSync(process.execPath, [CLI, 'classify', '--model', path.join(tmp, 'm'), a], { encoding: 'utf8' });
  expect(text.split('\n')[0]).toBe(a);
  expect(text).toContain(expected[0][0].label);
  model.dispose();
});

test('bad image, bad options and a classifier given to generate exit 1 with a code', () => {
  const notImage = path.join(tmp, 'x.png');
  fs.writeFileSync(notImage, 'text');
  const r = spawnSync(process.execPath, [CLI, 'classify', '--model', path.join(tmp, 'm'), notImage], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`E_FORMAT: ${notImage}`));
  const k = spawnSync(process.execPath, [CLI, 'classify', '--model', path.join(tmp, 'm'), '--top-k', '0', a], { encoding: 'utf8' });
  expect(k.status).toBe(1);
  expect(k.stderr).toMatch(/E_ARG: --top-k/);
  const g = spawnSync(process.execPath, [CLI, 'generate', '--model', path.join(tmp, 'm'), 'hi'], { encoding: 'utf8' });
  expect(g.status).toBe(1);
  expect(g.stderr).toMatch(/E_ARG: .*MambaOutClassifier, not a language model/);
});
