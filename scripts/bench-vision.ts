// MambaOut image classification throughput on the CPU: images/s of the whole forward (the native plan
// from pixels to logits; decoding/preprocessing not included) at batch 1 and 32, random weights in
// timm's layout, f32 and bf16 linear weights; plus one gated CNN block of each model's third stage.
//   node dist/scripts/bench-vision.js [--variants femto,tiny] [--dtypes f32,bf16] [--batches 1,32]
//        [--reps 3] [--threads N] [--cache bench/.cache] [--out bench/results/vision-cpu.json]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambaOutClassifier, Tensor, benchGatedBlock, loadClassifier, setThreads, threads } from '../lib';
import type { WeightDType } from '../lib';
import { MAMBAOUT_VARIANTS, mambaOutParams } from '../lib/io/mambaout-config';
import { randomMambaOutWeights, writeMambaOutCheckpoint } from '../test/helpers/mambaout-ckpt';
import { arg, machine, median, writeResults } from './bench-util';

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

async function checkpoint(cache: string, variant: string): Promise<string> {
  const dir = path.join(cache, `mambaout-${variant}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    const s = { ...MAMBAOUT_VARIANTS[variant], numClasses: 1000 };
    await writeMambaOutCheckpoint(dir, s, randomMambaOutWeights(s), { config: { variant } });
  }
  return dir;
}

async function timeForward(model: MambaOutClassifier, batch: number, reps: number): Promise<number[]> {
  const px = Tensor.from(Float32Array.from({ length: batch * 224 * 224 * 3 }, () => Math.random() * 4 - 2), [batch, 224, 224, 3]);
  try {
    (await model.forward(px)).dispose(); // warm-up: allocator and threads
    const times: number[] = [];
    for (let r = 0; r < reps; ++r) {
      const t0 = now();
      (await model.forward(px)).dispose();
      times.push(now() - t0);
    }
    return times;
  } finally {
    px.dispose();
  }
}

async function main(): Promise<void> {
  const variants = arg('variants', 'femto,tiny').split(',');
  const dtypes = arg('dtypes', 'f32,bf16').split(',') as WeightDType[];
  const batches = arg('batches', '1,32').split(',').map(Number);
  const reps = Number(arg('reps', '3'));
  const cache = path.resolve(arg('cache', 'bench/.cache'));
  const out = path.resolve(arg('out', 'bench/results/vision-cpu.json'));
  if (process.argv.includes('--threads')) setThreads(Number(arg('threads', '1')));
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${threads()} threads used, ${m.cpuFeatures}`);
  const rows: unknown[] = [];
  const table: string[] = [];
  for (const variant of variants) {
    const v = MAMBAOUT_VARIANTS[variant];
    if (!v) throw new Error(`unknown variant '${variant}'`);
    const dir = await checkpoint(cache, variant);
    for (const dtype of dtypes) {
      const model = await loadClassifier(dir, { dtype });
      for (const batch of batches) {
        const times = await timeForward(model, batch, reps);
        const best = Math.min(...times), med = median(times);
        rows.push({
          model: `mambaout_${variant}`, depths: v.depths, dims: v.dims, params: mambaOutParams({ ...v, numClasses: 1000 }),
          input: [batch, 224, 224, 3], dtype, weights: dtype === 'f32' ? 'f32' : `${dtype} linear weights (fc1, fc2, head), f32 convs/norms/biases, f32 activations`,
          reps, loadAverage1m: os.loadavg()[0], secondsPerForward: times, imagesPerSecondBest: batch / best, imagesPerSecondMedian: batch / med,
        });
        const line = `${variant} ${dtype} batch ${batch}: ${(batch / best).toFixed(2)} images/s best (${(batch / med).toFixed(2)} median; ${(1000 * med / batch).toFixed(1)} ms/image)`;
        console.log(line);
        table.push(line);
      }
      model.dispose();
    }
    // one block of stage 2 (the deepest stage) at batch 32: 14×14 tokens of dims[2] channels
    const blk = await benchGatedBlock({ batch: 32, height: 14, width: 14, channels: v.dims[2], reps });
    rows.push({ model: `mambaout_${variant} gated block (stage 2)`, input: [32, 14, 14, v.dims[2]], dtype: 'f32', reps, secondsPerCall: blk.seconds, tokensPerSecond: blk.tokensPerSecond });
    console.log(`${variant} stage-2 block [32, 14×14, ${v.dims[2]}] f32: ${(1000 * blk.seconds).toFixed(1)} ms, ${(blk.tokensPerSecond / 1e3).toFixed(1)}k tokens/s`);
  }
  writeResults(out, {
    benchmark: 'mambaout-forward', device: 'cpu', machine: m, threads: threads(),
    notes: ['random weights in timm layout; pixels [B, 224, 224, 3] f32 already preprocessed (decode/resize not timed)',
      'one warm-up forward, then `reps` timed forwards; images/s from the best and the median run',
      'a shared 2-vCPU machine: loadAverage1m is the 1-minute load when the row finished (other work running)'],
    rows,
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
