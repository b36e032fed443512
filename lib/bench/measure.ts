// The measurements of `mambakit bench`, each run in a process of its own (mambakit's peak-memory
// counter is process-wide): one model configuration, or the Mixture-of-Mamba projection comparison.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadModel } from '../models/load';
import { MambaLM, WeightDType } from '../models/mamba';
import * as ops from '../ops';
import { memory } from '../runtime';
import { Device, Tensor } from '../tensor';
import { BenchSize, ConfigId, accounting, benchConfig, decodeMix, tokenMix } from './configs';
import { randomWeights, writeCheckpoint } from './random-checkpoint';

export interface ConfigResult {
  id: string;
  label: string;
  family: string;
  totalParams: number;
  activeParams: number;
  flopsPerToken: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: { batch1: number; batch16: number };
  /** Median seconds per decode step. */
  decodeStepSeconds: { batch1: number; batch16: number };
  weightBytes: number;
  peakBytes: number;
  /** MoE: tokens per expert summed over the MoE blocks during the prefill runs; fractions of all. */
  expertLoad: number[] | null;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const randTokens = (n: number, V: number): number[] => Array.from({ length: n }, () => Math.floor(Math.random() * V));

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function devKey(device: Device): string {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** Writes the configuration's random checkpoint, loads it and measures it. */
export async function measureConfig(id: ConfigId, size: BenchSize, device: Device, dtype: WeightDType): Promise<ConfigResult> {
  const c = benchConfig(id, size);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mambakit-bench-${id}-`));
  try {
    await writeCheckpoint(dir, c.json, c.cfg, randomWeights(c.cfg), 'BF16');
    const key = devKey(device);
    const before = memory()[key]?.bytes ?? 0;
    const model = (await loadModel(dir, { device, dtype })) as MambaLM;
    const weightBytes = (memory()[key]?.bytes ?? 0) - before;
    const M = c.cfg.modalities?.count ?? 0;
    const V = c.cfg.vocabSize;

    // prefill: one prompt of size.prompt tokens (the interleaved mix for Mixture-of-Mamba), median of 3
    const prompt = [randTokens(size.prompt, V)];
    const mods = M ? [tokenMix(M, size.prompt)] : undefined;
    const prefillOnce = async () => {
      const st = model.newState(1);
      (await model.prefill(prompt, st, { modalities: mods })).dispose();
      st.dispose();
    };
    await prefillOnce(); // warm-up: first-touch of weights and workspaces
    const load0 = await model.expertLoad();
    const prefillTimes: number[] = [];
    for (let r = 0; r < 3; ++r) prefillTimes.push(await time(prefillOnce));
    const prefill = median(prefillTimes);
    const load1 = await model.expertLoad();
    const expertLoad = load1.length === 0 ? null
      : load1[0].map((_, e) => load1.reduce((a, layer, l) => a + layer[e] - load0[l][e], 0));

    // decode: B sequences after a short prompt, one token each per step, median step time
    const decode = async (B: number): Promise<number> => {
      const st = model.newState(B);
      const dm = M ? decodeMix(M, B) : undefined;
      (await model.prefill(Array.from({ length: B }, () => randTokens(8, V)), st, { modalities: dm?.map((m) => new Array<number>(8).fill(m)) })).dispose();
      const ts: number[] = [];
      for (let i = 0; i < size.decodeSteps + 2; ++i) {
        const ids = randTokens(B, V);
        const dt = await time(async () => (await model.step(ids, st, { modalities: dm })).dispose());
        if (i >= 2) ts.push(dt); // two warm-up steps
      }
      st.dispose();
      return median(ts);
    };
    const step1 = await decode(1);
    const step16 = await decode(16);
    const acc = accounting(c);
    const result: ConfigResult = {
      id, label: c.label, family: c.family, ...acc,
      prefillTokensPerSec: size.prompt / prefill,
      decodeTokensPerSec: { batch1: 1 / step1, batch16: 16 / step16 },
      decodeStepSeconds: { batch1: step1, batch16: step16 },
      weightBytes, peakBytes: memory()[key]?.peakBytes ?? 0, expertLoad,
    };
    model.dispose();
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface ProjectionResult {
  rows: number;
  modalities: number;
  /** Seconds for a block's four projections (in, x, dt, out): the seed's masked loop vs one grouped GEMM each. */
  maskedLoopSeconds: number;
  groupedSeconds: number;
  speedup: number;
  /** Largest |difference| between the two outputs (they compute the same function). */
  maxAbsDiff: number;
}

/**
 * Mixture-of-Mamba's four projections over `rows` tokens of M modalities, done two ways with the
 * eager ops: (a) as the seed's reference code does it — for each modality, select its rows (index
 * list from the mask), gather them, run that modality's dense GEMM, and write the result back into
 * the merged output; (b) one counting sort of the rows by modality, then one grouped GEMM per
 * projection that gathers and scatters inside the kernel.
 */
export async function measureProjections(size: BenchSize, M: number, rows: number, device: Device, dtype: WeightDType): Promise<ProjectionResult> {
  const E = size.expand * size.D, R = Math.ceil(size.D / 16);
  const shapes: [number, number][] = [[2 * E, size.D], [R + 2 * size.N, E], [E, R], [size.D, E]]; // [out, in]
  const mix = rows > 64 ? tokenMix(M, rows) : decodeMix(M, rows);
  const rnd = (n: number, s: number) => Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * s);
  const stacked = shapes.map(([o, i]) => Tensor.from(rnd(M * o * i, 1 / Math.sqrt(i)), [M, o, i], { device, dtype }));
  const perMod = await Promise.all(stacked.map(async (w, p) => {
    const [o, i] = shapes[p];
    const data = (await w.data()) as Float32Array;
    return Array.from({ length: M }, (_, m) => Tensor.from(data.subarray(m * o * i, (m + 1) * o * i), [o, i], { device, dtype }));
  }));
  const xs = shapes.map(([, i]) => Tensor.from(rnd(rows * i, 1), [rows, i], { device }));
  const modIds = Tensor.from(Int32Array.from(mix), [rows], { device });

  const masked = async (): Promise<Tensor[]> => {
    const outs: Tensor[] = [];
    for (let p = 0; p < shapes.length; ++p) {
      const merged = new Float32Array(rows * shapes[p][0]);
      for (let m = 0; m < M; ++m) {
        const idx: number[] = [];
        mix.forEach((v, r) => { if (v === m) idx.push(r); }); // the mask → row indices
        if (idx.length === 0) continue;
        const it = Tensor.from(Int32Array.from(idx), [idx.length], { device });
        const xm = await ops.embedding(it, xs[p]); // x[mask]: gather the rows
        const ym = await ops.gemm(xm, perMod[p][m]); // this modality's projection
        const yd = (await ym.data()) as Float32Array;
        const o = shapes[p][0];
        idx.forEach((r, j) => merged.set(yd.subarray(j * o, (j + 1) * o), r * o)); // merged[mask] = y
        for (const t of [it, xm, ym]) t.dispose();
      }
      outs.push(Tensor.from(merged, [rows, shapes[p][0]], { device }));
    }
    return outs;
  };
  const grouped = async (): Promise<Tensor[]> => {
    const { offsets, src, pos } = await ops.groupSort(modIds, M); // once per block, shared by the four
    const outs: Tensor[] = [];
    for (let p = 0; p < shapes.length; ++p) outs.push(await ops.groupedGemm(xs[p], stacked[p], offsets, { src, dst: src }));
    for (const t of [offsets, src, pos]) t.dispose();
    return outs;
  };
  const run = async (fn: () => Promise<Tensor[]>): Promise<{ s: number; out: Float32Array[] }> => {
    let out: Tensor[] = await fn(); // warm-up
    const ts: number[] = [];
    for (let r = 0; r < 5; ++r) {
      out.forEach((t) => t.dispose());
      ts.push(await time(async () => { out = await fn(); }));
    }
    const data = await Promise.all(out.map(async (t) => (await t.data()) as Float32Array));
    out.forEach((t) => t.dispose());
    return { s: median(ts), out: data };
  };
  const a = await run(masked), b = await run(grouped);
  let maxAbsDiff = 0;
  a.out.forEach((o, p) => o.forEach((v, i) => { maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - b.out[p][i])); }));
  for (const t of [...stacked, ...perMod.flat(), ...xs, modIds]) t.dispose();
  return { rows, modalities: M, maskedLoopSeconds: a.s, groupedSeconds: b.s, speedup: a.s / b.s, maxAbsDiff };
}
