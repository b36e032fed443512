// The cost of representation editors on a frozen model, side by side in one run, variants interleaved
// round by round (random weights, mamba-130m shape, bf16): prefill of a 512-token prompt and decode at
// batch 1 and 16 with MRT's setting (rank 4 at every layer on the first 6 and the last 6 prompt
// positions, prefill only) against no editors; the same editors also editing every decoded token; a
// decode batch mixing 4 such tenants against one; device memory per resident set; MambaOut-femto with an
// editor after every block against none.
//   node dist/scripts/bench-editors.js [--model 130m|tiny] [--rounds 5] [--out bench/results/editors-cpu.json]
import * as fs from 'fs';
import * as path from 'path';

import { EditorSet, MambaLM, MambaOutClassifier, Tensor, loadClassifier, loadLanguageModel } from '../lib';
import { MAMBAOUT_VARIANTS } from '../lib/io/mambaout-config';
import type { WeightDType } from '../lib/dtype';
import { editorSet, randomEditor } from '../test/helpers/editor-ref';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../test/helpers/mamba-ckpt';
import { randomMambaOutWeights, writeMambaOutCheckpoint } from '../test/helpers/mambaout-ckpt';
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

// Seconds of each of `fs`, measured interleaved round by round (A B C A B C …: slow drifts of a shared
// machine hit every variant alike), after one warm-up each; medians.
async function interleaved(rounds: number, fs: (() => Promise<void>)[]): Promise<number[]> {
  for (const f of fs) await f();
  const t: number[][] = fs.map(() => []);
  for (let i = 0; i < rounds; ++i)
    for (const [k, f] of fs.entries()) {
      const t0 = performance.now();
      await f();
      t[k].push((performance.now() - t0) / 1000);
    }
  return t.map(median);
}

async function main(): Promise<void> {
  const shapeName = arg('model', '130m');
  const s = SHAPES[shapeName];
  const rounds = Number(arg('rounds', '7'));
  const dtype = arg('dtype', 'bf16') as WeightDType;
  const out = arg('out', 'bench/results/editors-cpu.json');
  const dir = path.join(path.resolve(arg('cache', 'bench/.cache')), `serve-${shapeName}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    console.log(`writing a random ${shapeName} checkpoint to ${dir} …`);
    await writeMambaCheckpoint(dir, s, randomMambaWeights(s), { dtype: 'BF16' });
  }
  const model: MambaLM = await loadLanguageModel(dir, { dtype });
  const L = model.blocks.length;
  // four prefill-only tenants (MRT's setting) and four that also edit every decoded token
  for (let k = 0; k < 4; ++k) model.attachEditors(`t${k}`, mrtSet(s.D, L, false));
  for (let k = 0; k < 4; ++k) model.attachEditors(`d${k}`, mrtSet(s.D, L, true));
  const m = machine();
  console.log(`${m.cpu}, ${m.threads} threads, ${m.cpuKernels}/${m.bf16Gemm}; ${shapeName} ${dtype}; editors: ${2 * L} of rank 4 (prefix 6 + suffix 6 at every layer)`);
  const prompt = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => (k * 7919 + i * 104729) % s.V);

  // prefill of one 512-token prompt
  const P = 512;
  const prefill = (editors?: string) => async (): Promise<void> => {
    const st = model.newState(1);
    (await model.prefill([prompt(1, P)], st, { editors })).dispose();
    st.dispose();
  };
  const [prefillNone, prefillEd] = await interleaved(rounds, [prefill(), prefill('t0')]);

  // decode: B sequences prefilled (32-token prompts) into one state per variant, then `steps` steps per round
  const steps = 32;
  const decodeRates = async (B: number, variants: ((string | null)[] | undefined)[]): Promise<number[]> => {
    const states = await Promise.all(variants.map(async (editors) => {
      const st = model.newState(B);
      (await model.prefill(Array.from({ length: B }, (_, b) => prompt(b + 2, 32)), st, { editors })).dispose();
      return st;
    }));
    const ids = Array.from({ length: B }, (_, b) => b + 1);
    const t = await interleaved(rounds, variants.map((editors, k) => async () => {
      for (let i = 0; i < steps; ++i) (await model.step(ids, states[k], { editors })).dispose();
    }));
    states.forEach((st) => st.dispose());
    return t.map((x) => (B * steps) / x);
  };
  const one = (B: number, name: string): string[] => Array.from({ length: B }, () => name);
  const four = (B: number, prefix: string): string[] => Array.from({ length: B }, (_, b) => `${prefix}${b % 4}`);
  const [b1None, b1Ed, b1Dec] = await decodeRates(1, [undefined, ['t0'], ['d0']]);
  const [b16None, b16Ed, b16Dec1, b16Dec4] = await decodeRates(16, [undefined, one(16, 't0'), one(16, 'd0'), four(16, 'd')]);
  const rows = {
    prefill512: { noneTokS: P / prefillNone, editorsTokS: P / prefillEd },
    decodeB1: { noneTokS: b1None, prefillOnlyEditorsTokS: b1Ed, decodeEditorsTokS: b1Dec },
    decodeB16: { noneTokS: b16None, prefillOnlyEditorsTokS: b16Ed, decodeEditorsOneTenantTokS: b16Dec1, decodeEditorsFourTenantsTokS: b16Dec4 },
  };
  const overhead = (a: number, b: number): number => a / b - 1; // time ratio − 1 from rates
  const summary = {
    prefillOverhead: overhead(rows.prefill512.noneTokS, rows.prefill512.editorsTokS),
    decodeB1Overhead: overhead(b1None, b1Ed),
    decodeB16Overhead: overhead(b16None, b16Ed),
    decodeEditorsB1Overhead: overhead(b1None, b1Dec),
    decodeEditorsB16Overhead: overhead(b16None, b16Dec1),
    fourTenantsVsOne: overhead(b16Dec1, b16Dec4),
    bytesPerSet: model.editorRegistry.bytes('t0'),
  };
  console.log(JSON.stringify(rows, null, 1));
  // vision: MambaOut-femto at 224² with a rank-4 editor after every block (all positions), batch 1 and 8
  const vdir = path.join(path.resolve(arg('cache', 'bench/.cache')), 'mambaout-femto');
  if (!fs.existsSync(path.join(vdir, 'config.json'))) {
    const vs = { ...MAMBAOUT_VARIANTS.femto, numClasses: 1000 };
    await writeMambaOutCheckpoint(vdir, vs, randomMambaOutWeights(vs), { config: { variant: 'femto' } });
  }
  const vision: MambaOutClassifier = await loadClassifier(vdir, { dtype });
  const layers = vision.blocks.map((_, l) => l);
  const dims = MAMBAOUT_VARIANTS.femto.dims;
  let stage = 0;
  const widths = vision.blocks.map((kind) => (kind === 'downsample' ? dims[++stage] : dims[stage]));
  vision.attachEditors('v', editorSet(dims[dims.length - 1], layers.map((l) => randomEditor({ name: `b${l}`, layer: l, positions: { kind: 'all' }, rank: 4, formula: 'mrt' }, widths[l])), 'mambaout'));
  const visionRows: Record<string, { noneImgS: number; editorsImgS: number; overhead: number }> = {};
  for (const B of [1, 8]) {
    const px = Tensor.from(Float32Array.from({ length: B * 224 * 224 * 3 }, () => Math.random() * 4 - 2), [B, 224, 224, 3]);
    const [tn, te] = await interleaved(rounds, [
      async () => (await vision.forward(px)).dispose(),
      async () => (await vision.forward(px, { editors: 'v' })).dispose(),
    ]);
    visionRows[`batch${B}`] = { noneImgS: B / tn, editorsImgS: B / te, overhead: te / tn - 1 };
    px.dispose();
  }
  vision.dispose();
  console.log(JSON.stringify(visionRows));

  const pc = (x: number): string => `${(100 * x).toFixed(1)}%`;
  console.log(`MRT's setting (prefill only): prefill ${pc(summary.prefillOverhead)}, decode b1 ${pc(summary.decodeB1Overhead)}, b16 ${pc(summary.decodeB16Overhead)} (goal ≤ 3%); ` +
    `editing every decoded token too: b1 ${pc(summary.decodeEditorsB1Overhead)}, b16 ${pc(summary.decodeEditorsB16Overhead)}; 4 tenants vs 1 in a b16 step ${pc(summary.fourTenantsVsOne)}; ${summary.bytesPerSet} bytes per set; ` +
    `MambaOut-femto with an editor after each of its ${layers.length} blocks: batch 1 ${pc(visionRows.batch1.overhead)}, batch 8 ${pc(visionRows.batch8.overhead)}`);
  writeResults(out, {
    benchmark: 'editors', device: 'cpu', machine: m, model: { shape: shapeName, ...s, dtype, weights: 'random' },
    editors: { perSet: 2 * L, rank: 4, positions: 'prefix 6 + suffix 6 (excluding the last prompt token) at every layer', formula: 'mrt', activation: 'identity' },
    settings: { rounds, prefillTokens: P, decodeSteps: steps, decodePrompt: 32, statistic: 'median of rounds, variants interleaved' },
    rows, summary, goal: { overhead: 0.03 },
    vision: { model: 'mambaout_femto', pixels: '224x224', editors: 'rank 4, mrt, identity, all positions, after every block', rows: visionRows },
  });
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
