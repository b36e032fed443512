// The cost of representation editors on a frozen model, side by side in one run (random weights,
// mamba-130m shape, bf16): prefill of a 512-token prompt and decode at batch 1 and 16 with MRT's
// setting (rank 4 at every layer on the first 6 and the last 6 prompt positions, prefill only) against
// no editors; the same editors also editing every decoded token; a decode batch mixing 4 tenants
// against a batch of one tenant; device memory per resident set.
//   node dist/scripts/bench-editors.js [--model 130m|tiny] [--rounds 5] [--out bench/results/editors-cpu.json]
import * as fs from 'fs';
import * as path from 'path';

import { EditorSet, MambaLM, Tensor, loadLanguageModel } from '../lib';
import type { WeightDType } from '../lib/dtype';
import { editorSet, randomEditor } from '../test/helpers/editor-ref';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../test/helpers/mamba-ckpt';
import { arg, machine, median, writeResults } from './bench-util';

const SHAPES: Record<string, MambaShape> = {
  '130m': { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4 },
  tiny: { D: 128, L: 4, V: 1024, N: 8, expand: 2, K: 4 },
};

/** MRT's LM setting: at every layer, one rank-r editor on the first n and one on the last n prompt positions. */
function mrtSet(D: number, L: number, decode: boolean): EditorSet {
  const editors = [];
  for (let l = 0; l < L; ++l) {
    editors.push(randomEditor({ name: `l${l}.prefix`, layer: l, positions: { kind: 'prefix', n: 6 }, rank: 4, formula: 'mrt', decode }, D));
    editors.push(randomEditor({ name: `l${l}.suffix`, layer: l, positions: { kind: 'suffix', n: 6, excludeLast: true }, rank: 4, formula: 'mrt', decode }, D));
  }
  return editorSet(D, editors);
}

async function timeIt(rounds: number, f: () => Promise<void>): Promise<number> {
  await f(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < rounds; ++i) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

async function main(): Promise<void> {
  const shapeName = arg('model', '130m');
  const s = SHAPES[shapeName];
  const rounds = Number(arg('rounds', '5'));
  const dtype = arg('dtype', 'bf16') as WeightDType;
  const out = arg('out', 'bench/results/editors-cpu.json');
  const dir = path.join(path.resolve(arg('cache', 'bench/.cache')), `serve-${shapeName}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    console.log(`writing a random ${shapeName} checkpoint to ${dir} …`);
    await writeMambaCheckpoint(dir, s, randomMambaWeights(s), { dtype: 'BF16' });
  }
  const model: MambaLM = await loadLanguageModel(dir, { dtype });
  const L = model.blocks.length;
  for (let k = 0; k < 4; ++k) model.attachEditors(`t${k}`, mrtSet(s.D, L, false));
  model.attachEditors('decode', mrtSet(s.D, L, true));
  const m = machine();
  console.log(`${m.cpu}, ${m.threads} threads, ${m.cpuKernels}/${m.bf16Gemm}; ${shapeName} ${dtype}; editors: ${2 * L} of rank 4 (prefix 6 + suffix 6 at every layer)`);
  const prompt = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => (k * 7919 + i * 104729) % s.V);

  // prefill of one 512-token prompt
  const P = 512;
  const prefill = async (editors?: string): Promise<number> => timeIt(rounds, async () => {
    const st = model.newState(1);
    (await model.prefill([prompt(1, P)], st, { editors })).dispose();
    st.dispose();
  });
  const prefillNone = await prefill(), prefillEd = await prefill('t0');

  // decode: B sequences prefilled (32-token prompts), then 32 steps timed
  const steps = 32;
  const decode = async (B: number, editors: (string | null)[] | undefined): Promise<number> => {
    const st = model.newState(B);
    (await model.prefill(Array.from({ length: B }, (_, b) => prompt(b + 2, 32)), st, { editors })).dispose();
    const ids = Array.from({ length: B }, (_, b) => b + 1);
    const t = await timeIt(rounds, async () => {
      for (let i = 0; i < steps; ++i) {
        const lg: Tensor = await model.step(ids, st, { editors });
        lg.dispose();
      }
    });
    st.dispose();
    return (B * steps) / t;
  };
  const one = (B: number, name: string): string[] => Array.from({ length: B }, () => name);
  const four = (B: number, prefix: string): string[] => Array.from({ length: B }, (_, b) => (prefix === 'decode' ? 'decode' : `${prefix}${b % 4}`));
  const rows = {
    prefill512: { noneTokS: P / prefillNone, editorsTokS: P / prefillEd, overhead: prefillEd / prefillNone - 1 },
    decodeB1: { noneTokS: await decode(1, undefined), prefillOnlyEditorsTokS: await decode(1, ['t0']), decodeEditorsTokS: await decode(1, ['decode']) },
    decodeB16: {
      noneTokS: await decode(16, undefined), oneTenantTokS: await decode(16, one(16, 't0')), fourTenantsTokS: await decode(16, four(16, 't')),
      decodeEditorsOneSetTokS: await decode(16, one(16, 'decode')),
    },
  };
  const overhead = (a: number, b: number): number => a / b - 1; // time ratio − 1 from rates
  const summary = {
    prefillOverhead: rows.prefill512.overhead,
    decodeB1Overhead: overhead(rows.decodeB1.noneTokS, rows.decodeB1.prefillOnlyEditorsTokS),
    decodeB16Overhead: overhead(rows.decodeB16.noneTokS, rows.decodeB16.oneTenantTokS),
    fourTenantsVsOne: overhead(rows.decodeB16.oneTenantTokS, rows.decodeB16.fourTenantsTokS),
    decodeEditorsB1Overhead: overhead(rows.decodeB1.noneTokS, rows.decodeB1.decodeEditorsTokS),
    bytesPerSet: model.editorRegistry.bytes('t0'),
  };
  console.log(JSON.stringify(rows, null, 1));
  console.log(`prefill overhead ${(100 * summary.prefillOverhead).toFixed(1)}%, decode b1 ${(100 * summary.decodeB1Overhead).toFixed(1)}%, b16 ${(100 * summary.decodeB16Overhead).toFixed(1)}%, ` +
    `4 tenants vs 1 ${(100 * summary.fourTenantsVsOne).toFixed(1)}%, decode-time editors b1 ${(100 * summary.decodeEditorsB1Overhead).toFixed(1)}% (goal ≤ 3% for the first three); ${summary.bytesPerSet} bytes per set`);
  writeResults(out, {
    benchmark: 'editors', device: 'cpu', machine: m, model: { shape: shapeName, ...s, dtype, weights: 'random' },
    editors: { perSet: 2 * L, rank: 4, positions: 'prefix 6 + suffix 6 (excluding the last prompt token) at every layer', formula: 'mrt', activation: 'identity' },
    settings: { rounds, prefillTokens: P, decodeSteps: steps, decodePrompt: 32, statistic: 'median of rounds' },
    rows, summary, goal: { overhead: 0.03 },
  });
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
