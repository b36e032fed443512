// The server's `editors` field over loopback: a request names an attached set and gets exactly what
// model.complete gives with it, concurrent requests with different sets (or none) share batched steps,
// an unknown set is a 400 with an OpenAI-shaped error; the diffusion route takes the field too; and
// `mambakit serve --editors NAME=DIR` attaches sets from disk.
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FastifyInstance } from 'fastify';

import { LladaLM, MambaLM, createServer, loadLanguageModel, loadModel, writeEditors } from '../../lib';
import { editorSet, randomEditor } from '../helpers/editor-ref';
import { writeLladaCheckpoint } from '../helpers/llada-ckpt';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';

const S: MambaShape = { D: 32, L: 2, V: 97, N: 8, expand: 2, K: 4 };
const ROOT = path.join(__dirname, '..', '..');
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-srv-editors-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Completion { choices: { text: string }[]; error?: { message: string; type: string } }
const post = (base: string, body: unknown): Promise<Response> =>
  fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const tokensOf = (c: { choices: { logprobs?: { token_ids: number[] } | null }[] }): number[] => c.choices[0].logprobs?.token_ids ?? [];

describe('language model server with editors', () => {
  let model: MambaLM, app: FastifyInstance, base: string;
  beforeAll(async () => {
    await writeMambaCheckpoint(path.join(tmp, 'm'), S, randomMambaWeights(S));
    model = await loadLanguageModel(path.join(tmp, 'm'));
    model.attachEditors('t1', editorSet(S.D, [randomEditor({ name: 'a', layer: 0, positions: { kind: 'prefix', n: 3 }, rank: 4, formula: 'mrt' }, S.D)]));
    model.attachEditors('t2', editorSet(S.D, [randomEditor({ name: 'b', layer: 1, positions: { kind: 'all' }, rank: 2, activation: 'relu', decode: true }, S.D)]));
    app = createServer(model, { modelName: 'tiny', maxBatch: 4 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
    model.dispose();
  });

  test('each request gets its set\'s result, alone or with others in the same batch', async () => {
    const prompt = [5, 17, 33, 2, 61, 8];
    const body = (editors?: string): unknown => ({ prompt, max_tokens: 8, temperature: 0, logprobs: 1, ...(editors && { editors }) });
    const want = await Promise.all(['t1', 't2', undefined].map((e) => model.complete(prompt, { maxTokens: 8, temperature: 0, ...(e && { editors: e }) })));
    const got = await Promise.all(['t1', 't2', undefined].map(async (e) => (await (await post(base, body(e))).json()) as Completion));
    expect(got.map((c) => tokensOf(c as never))).toEqual(want.map((w) => w.tokens));
  });

  test('an unknown set: 400 with an OpenAI-shaped error naming it', async () => {
    const r = await post(base, { prompt: [1, 2, 3], max_tokens: 2, editors: 'nope' });
    expect(r.status).toBe(400);
    const j = (await r.json()) as Completion;
    expect(j.error?.message).toContain("no editor set named 'nope'");
    expect((await post(base, { prompt: [1, 2, 3], editors: '' })).status).toBe(400); // schema: a non-empty name
  });
});

test('a diffusion model\'s /v1/completions takes editors too', async () => {
  const ck = await writeLladaCheckpoint(path.join(tmp, 'llada'), { D: 32, H: 2, KVH: 2, L: 1, F: 48, V: 300, maskId: 299, dtype: 'f32' });
  const model = (await loadModel(ck.dir, { kind: 'diffusion' })) as LladaLM;
  model.attachEditors('e', editorSet(32, [randomEditor({ name: 'x', layer: 0, positions: { kind: 'all' }, rank: 3, activation: 'tanh' }, 32)], 'llada'));
  const app = createServer(model, { modelName: 'llada' });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const want = await model.generate([4, 8, 15], { genLength: 4, blockLength: 4, steps: 4, temperature: 0, editors: 'e' });
    const r = await post(base, { prompt: [4, 8, 15], max_tokens: 4, block_length: 4, steps: 4, temperature: 0, editors: 'e' });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { choices: { token_ids?: number[]; text: string }[] };
    expect(j.choices[0].text).toBe(want.text ?? '');
    expect((await post(base, { prompt: [4, 8, 15], max_tokens: 4, editors: 'nope' })).status).toBe(400);
  } finally {
    await app.close();
    model.dispose();
  }
});

test('mambakit serve --editors NAME=DIR attaches the set from disk; a malformed flag exits 1', async () => {
  const dir = path.join(tmp, 'ed');
  await writeEditors(dir, editorSet(S.D, [randomEditor({ name: 'a', layer: 0, positions: { kind: 'all' }, rank: 2 }, S.D)]));
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }); // the CLI runs from dist/
  const cli = path.join(ROOT, 'dist/lib/cli/main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--model', path.join(tmp, 'm'), '--port', '0', '--editors', `ed=${dir}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /at (http:\/\/[^ ]+) /.exec(err);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const ok = await post(url, { prompt: [1, 2, 3], max_tokens: 2, editors: 'ed' });
    expect(ok.status).toBe(200);
    expect((await post(url, { prompt: [1, 2, 3], max_tokens: 2, editors: 'other' })).status).toBe(400);
  } finally {
    child.kill('SIGKILL');
  }
  const bad = spawnSync(process.execPath, [cli, 'serve', '--model', path.join(tmp, 'm'), '--editors', 'no-equals-sign'], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('--editors must be NAME=DIR');
}, 120000);
