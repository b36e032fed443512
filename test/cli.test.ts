import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { info, loadLanguageModel } from '../lib';
import { randomMambaWeights, writeMambaCheckpoint } from './helpers/mamba-ckpt';
import { EOS, MERGES, byteLevelTokenizerJson } from './helpers/tokenizer-fixture';

const ROOT = path.join(__dirname, '..');

test('mambakit info prints version, CUDA, GPUs, CPU features and threads', () => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }); // the CLI runs from dist/
  const out = execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'info'], { encoding: 'utf8' });
  const i = info();
  expect(out).toContain(`mambakit ${i.version}`);
  if (!i.cuda.compiled) expect(out).toMatch(/CUDA: not compiled in \(.+\)/);
  else {
    expect(out).toMatch(/CUDA kernels: .+; CUDA runtime \d+\.\d+ \(static\)/);
    // without a usable GPU the reason is named (here: no driver, unless one is installed)
    expect(out).toMatch(i.gpus.length ? /CUDA in use: yes/ : /CUDA in use: no: (no-driver|no-device|driver-too-old|error): .+/);
  }
  expect(i.cuda.status === 'ok' || i.cuda.status === 'emulated').toBe(i.gpus.length > 0);
  expect(out).toMatch(i.gpus.length ? /cuda:0 .+ compute \d+\.\d+/ : /GPUs: none found/);
  expect(out).toContain(`CPU features: ${i.cpuFeatures}`);
  expect(out).toContain(`CPU threads: ${i.threads}`);
  const json = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'info', '--json'], { encoding: 'utf8' }));
  expect(json.ops).toEqual(expect.arrayContaining(['gemm', 'rmsnorm', 'softmax', 'argmax']));
});

test('unknown command exits 2 with usage', () => {
  let status = 0;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'frobnicate'], { stdio: 'pipe' });
  } catch (e) {
    status = (e as { status: number }).status;
  }
  expect(status).toBe(2);
});

describe('mambakit generate', () => {
  let dir: string;
  beforeAll(async () => {
    const s = { D: 32, L: 2, V: 256 + MERGES.length + 1, N: 8, expand: 2, K: 4 };
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-cli-'));
    await writeMambaCheckpoint(dir, s, randomMambaWeights(s));
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: EOS }));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('streams the same text as model.complete() with the same options', async () => {
    const expected = await (await loadLanguageModel(dir)).complete('hello world', { temperature: 0, maxTokens: 12 });
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'generate',
      '--model', dir, '--temperature', '0', '--max-tokens', '12', 'hello world'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(expected.text + '\n');
    expect(r.stderr).toMatch(new RegExp(`\\[(length|stop): \\d+ prompt \\+ ${expected.tokens.length} generated tokens\\]`));
  });

  test('bad flags exit 1 with a coded message', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'generate',
      '--model', dir, '--temperature', 'hot', 'x'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/E_ARG: --temperature must be a number/);
  });
});

describe('mambakit diffuse', () => {
  let dir: string;
  beforeAll(async () => {
    const { FIXTURE_VOCAB, writeLladaCheckpoint } = await import('./helpers/llada-ckpt');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-cli-llada-'));
    await writeLladaCheckpoint(dir, { D: 32, H: 2, KVH: 2, L: 1, F: 48, V: FIXTURE_VOCAB + 2, maskId: FIXTURE_VOCAB + 1, dtype: 'f32' });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('prints the text of model.generate with the same options, and the forward passes on stderr', async () => {
    const { loadModel } = await import('../lib');
    const model = await loadModel(dir, { kind: 'diffusion' });
    const expected = await model.generate('hi there', { genLength: 8, blockLength: 4, steps: 4, cache: 'prefix' });
    model.dispose();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'diffuse', '--model', dir, '--gen-length', '8',
      '--block-length', '4', '--steps', '4', '--cache', 'prefix', 'hi there'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${expected.text}\n`);
    expect(r.stderr).toContain(`${expected.nfe} forward passes`);
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'diffuse', '--model', dir, '--gen-length', '6',
      '--block-length', '4', 'hi'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/E_ARG: diffusion: genLength 6 is not a multiple of blockLength 4/);
  });
});
