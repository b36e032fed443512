// Cross-check against an independent implementation: the same random Mamba-1 checkpoint run by mambakit
// (from the HF safetensors layout) and by llama.cpp through node-llama-cpp (from a GGUF written by
// test/helpers/gguf.ts), on the same tokens; the logits of every position must agree.
// llama.cpp is installed into tools/llama-cpp on first use (network to the npm registry needed once);
// if that fails the suite fails with the reason — it does not skip.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadLanguageModel } from '../../lib';
import { writeMambaGguf } from '../helpers/gguf';
import { LlamaCpp } from '../helpers/llama-cpp';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { SEED, randInt } from '../helpers/random';

const THREADS = 2;

let tmp: string;
let llama: LlamaCpp;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-llamacpp-'));
  llama = await LlamaCpp.start(THREADS); // installs node-llama-cpp on demand: allow for a slow registry
}, 15 * 60 * 1000);

afterAll(async () => {
  await llama?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** ‖a − b‖ / ‖b‖ for each of the T rows of length V. */
function relL2PerRow(a: Float32Array, b: Float32Array, T: number, V: number): number[] {
  return Array.from({ length: T }, (_, t) => {
    let num = 0, den = 0;
    for (let v = t * V; v < (t + 1) * V; ++v) {
      num += (a[v] - b[v]) ** 2;
      den += b[v] ** 2;
    }
    return Number.isFinite(num) ? Math.sqrt(num / Math.max(den, 1e-30)) : Infinity;
  });
}

function expectRowsClose(a: Float32Array, b: Float32Array, T: number, V: number, tol: number, what: string): number {
  expect(a.length).toBe(T * V);
  expect(b.length).toBe(T * V);
  const errs = relL2PerRow(a, b, T, V);
  const worst = Math.max(...errs);
  if (!(worst < tol))
    throw new Error(`${what}: relative L2 error per position ${errs.map((e) => e.toExponential(2)).join(' ')}; worst ${worst.toExponential(3)} ≥ ${tol} (seed ${SEED})`);
  return worst;
}

async function prepare(name: string, s: MambaShape, ggufDtype: 'F32' | 'BF16' = 'F32'): Promise<{ dir: string; gguf: string }> {
  const dir = path.join(tmp, name);
  const w = randomMambaWeights(s);
  await writeMambaCheckpoint(dir, s, w);
  const gguf = path.join(dir, `model-${ggufDtype}.gguf`);
  writeMambaGguf(gguf, s, w, { dtype: ggufDtype });
  return { dir, gguf };
}

const rows = async (t: { data(): Promise<unknown>; dispose(): void }): Promise<Float32Array> => {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
};

describe('mambakit vs llama.cpp (node-llama-cpp, CPU)', () => {
  const CASES: [string, MambaShape][] = [
    ['D 64, L 2, V 256, N 16, K 4 (R auto, tied)', { D: 64, L: 2, V: 256, N: 16, expand: 2, K: 4 }],
    ['D 48, L 3, V 300, N 8, K 3, R 5, untied head, no conv bias', { D: 48, L: 3, V: 300, N: 8, expand: 2, K: 3, R: 5, tied: false, useConvBias: false }],
  ];

  test.each(CASES)('%s: logits of every position agree (relative L2 < 1e-3)', async (name, s) => {
    const { dir, gguf } = await prepare(name.replace(/\W+/g, '-'), s);
    const T = 16;
    const tokens = Array.from(randInt(T, s.V));

    const model = await loadLanguageModel(dir);
    const ours = await rows(await model.forward([tokens]));
    // the recurrent path too: prefill 5 tokens, then one step at a time
    const state = model.newState(1);
    const stepped = new Float32Array(T * s.V);
    stepped.set(await rows(await model.prefill([tokens.slice(0, 5)], state)), 4 * s.V);
    for (let t = 5; t < T; ++t) stepped.set(await rows(await model.step([tokens[t]], state)), t * s.V);
    state.dispose();
    model.dispose();

    await llama.load(gguf, { threads: THREADS, contextSize: 256, batchSize: 64, sequences: 1 });
    const ref = await llama.logits(tokens, s.V);

    const worst = expectRowsClose(ours, ref, T, s.V, 1e-3, `${name}: forward`);
    const from = 4;
    expectRowsClose(stepped.subarray(from * s.V), ref.subarray(from * s.V), T - from, s.V, 1e-3, `${name}: prefill + step`);
    console.log(`${name}: max relative L2 (forward vs llama.cpp) ${worst.toExponential(2)}`);
  });

  test('bf16 weights: mambakit bf16 and llama.cpp BF16 GGUF stay within 2e-2 (llama.cpp also rounds activations to bf16)', async () => {
    const s: MambaShape = { D: 64, L: 2, V: 256, N: 16, expand: 2, K: 4 };
    const { dir, gguf } = await prepare('bf16', s, 'BF16');
    const T = 12;
    const tokens = Array.from(randInt(T, s.V));
    const model = await loadLanguageModel(dir, { dtype: 'bf16' });
    const ours = await rows(await model.forward([tokens]));
    model.dispose();
    await llama.load(gguf, { threads: THREADS, contextSize: 256, batchSize: 64, sequences: 1 });
    const ref = await llama.logits(tokens, s.V);
    const worst = expectRowsClose(ours, ref, T, s.V, 2e-2, 'bf16');
    console.log(`bf16: max relative L2 (mambakit bf16 vs llama.cpp BF16) ${worst.toExponential(2)}`);
  });
});
