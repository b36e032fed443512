// The measurements of `mambakit bench`, each run in a process of its own (mambakit's peak-memory
// counter is process-wide): one model configuration, or the Mixture-of-Mamba projection comparison.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { gatedHidden } from '../io/mambaout-config';
import { parseMambaConfig } from '../io/mamba-config';
import type { WeightDType } from '../dtype';
import { loadLanguageModel } from '../models/load';
import * as ops from '../ops';
import { memory } from '../runtime';
import { Device, Tensor } from '../tensor';
import { uniformArray } from '../util/random';
import { time } from '../util/time';
import { benchGatedBlock } from '../vision/block';
import { Accounting, BenchSize, ConfigId, accounting, benchConfig, decodeMix, mambaBlockParams, tokenMix } from './configs';
import { randomWeights, writeCheckpoint } from './random-checkpoint';
import { median } from './util';

const randTokens = (n: number, V: number): number[] => Array.from({ length: n }, () => Math.floor(Math.random() * V));

function devKey(device: Device): string {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** Writes the configuration's random checkpoint (weights stored as bf16) into `dir`. */
export async function writeConfig(id: ConfigId, size: BenchSize, dir: string): Promise<void> {
  const c = benchConfig(id, size);
  await writeCheckpoint(dir, c.json, c.cfg, randomWeights(c.cfg), 'BF16');
}

export interface MemoryResult {
  id: string;
  weightBytes: number;
  peakBytes: number;
  expertLoad: number[] | null;
}

/**
 * Loads one configuration alone in this process and runs a prefill of the token mix and a few
 * batch-16 decode steps: weight bytes, peak bytes (mambakit's own accounting, process-wide), and
 * the per-expert load of the prefill (summed over the MoE blocks).
 */
export async function measureMemory(id: ConfigId, size: BenchSize, dir: string, device: Device, dtype: WeightDType): Promise<MemoryResult> {
  const key = devKey(device);
  const before = memory()[key]?.bytes ?? 0;
  const model = await loadLanguageModel(dir, { device, dtype });
  const weightBytes = (memory()[key]?.bytes ?? 0) - before;
  const M = model.config.modalities?.count ?? 0;
  const load0 = await model.expertLoad();
  const st = model.newState(1);
  (await model.prefill([randTokens(size.prompt, model.vocabSize)], st, { modalities: M ? [tokenMix(M, size.prompt)] : undefined })).dispose();
  st.dispose();
  const load1 = await model.expertLoad();
  const expertLoad = load1.length === 0 ? null : load1[0].map((_, e) => load1.reduce((a, layer, l) => a + layer[e] - load0[l][e], 0));
  const st16 = model.newState(16);
  const dm = M ? decodeMix(M, 16) : undefined;
  for (let i = 0; i < 3; ++i) (await model.step(randTokens(16, model.vocabSize), st16, { modalities: dm })).dispose();
  st16.dispose();
  model.dispose();
  return { id, weightBytes, peakBytes: memory()[key]?.peakBytes ?? 0, expertLoad };
}

export interface SpeedResult {
  id: string;
  prefillTokensPerSec: number;
  decodeTokensPerSec: { batch1: number; batch16: number };
  /** Median seconds per decode step. */
  decodeStepSeconds: { batch1: number; batch16: number };
}

/**
 * Every configuration loaded in one process and timed round-robin (`rounds` times: a prefill of each
 * configuration, then decode steps at batch 1 and 16 alternating configuration by configuration,
 * step by step): slow drifts and bursts on a shared machine then hit every configuration alike,
 * instead of whichever happened to run during them.
 */
export async function measureSpeed(ids: ConfigId[], size: BenchSize, dirs: string[], device: Device, dtype: WeightDType, rounds: number): Promise<SpeedResult[]> {
  const runs = [];
  for (let i = 0; i < ids.length; ++i) {
    const model = await loadLanguageModel(dirs[i], { device, dtype });
    const M = model.config.modalities?.count ?? 0;
    const V = model.vocabSize;
    const s1 = model.newState(1), s16 = model.newState(16);
    const m1 = M ? decodeMix(M, 1) : undefined, m16 = M ? decodeMix(M, 16) : undefined;
    (await model.prefill([randTokens(8, V)], s1, { modalities: m1?.map((m) => new Array<number>(8).fill(m)) })).dispose();
    (await model.prefill(Array.from({ length: 16 }, () => randTokens(8, V)), s16, { modalities: m16?.map((m) => new Array<number>(8).fill(m)) })).dispose();
    runs.push({ model, M, V, s1, s16, m1, m16, prefill: [] as number[], step1: [] as number[], step16: [] as number[] });
  }
  const prompt = [randTokens(size.prompt, runs[0].V)];
  const steps1 = Math.max(2, Math.round(size.decodeSteps / 4)), steps16 = Math.max(1, Math.round(size.decodeSteps / 8));
  // Round 0 warms up (first touch of weights and workspaces). Inside a round every single step
  // alternates between the configurations, so a burst from a neighbour lands on all of them.
  for (let r = 0; r < rounds + 1; ++r) {
    for (const x of runs) {
      const st = x.model.newState(1);
      const mods = x.M ? [tokenMix(x.M, size.prompt)] : undefined;
      const tp = await time(async () => (await x.model.prefill(prompt, st, { modalities: mods })).dispose());
      st.dispose();
      if (r > 0) x.prefill.push(tp);
    }
    for (let i = 0; i < steps1; ++i)
      for (const x of runs) {
        const ids = randTokens(1, x.V);
        const dt = await time(async () => (await x.model.step(ids, x.s1, { modalities: x.m1 })).dispose());
        if (r > 0) x.step1.push(dt);
      }
    for (let i = 0; i < steps16; ++i)
      for (const x of runs) {
        const ids = randTokens(16, x.V);
        const dt = await time(async () => (await x.model.step(ids, x.s16, { modalities: x.m16 })).dispose());
        if (r > 0) x.step16.push(dt);
      }
  }
  return runs.map((x, i) => {
    const [p, d1, d16] = [median(x.prefill), median(x.step1), median(x.step16)];
    for (const t of [x.s1, x.s16]) t.dispose();
    x.model.dispose();
    return {
      id: ids[i], prefillTokensPerSec: size.prompt / p,
      decodeTokensPerSec: { batch1: 1 / d1, batch16: 16 / d16 }, decodeStepSeconds: { batch1: d1, batch16: d16 },
    };
  });
}

/** Everything the report shows for one configuration. */
export type ConfigResult = { id: string; label: string; family: string } & Accounting & Omit<SpeedResult, 'id'> & Omit<MemoryResult, 'id'>;

export function configResult(id: ConfigId, size: BenchSize, speed: SpeedResult, mem: MemoryResult): ConfigResult {
  const c = benchConfig(id, size);
  const { id: _s, ...sp } = speed;
  const { id: _m, ...me } = mem;
  return { id, label: c.label, family: c.family, ...accounting(c), ...sp, ...me };
}

export interface ProjectionResult {
  rows: number;
  modalities: number;
  /** Seconds for a block's four projections (in, x, dt, out): the seed's masked loop vs one grouped GEMM each. */
  maskedLoopSeconds: number;
  groupedSeconds: number;
  speedup: number;
  /**
   * Largest |difference| between the two outputs. They compute the same function; with bf16 weights on
   * a CPU whose bf16 GEMM rounds x to bf16 (info().bf16Gemm), the two ways batch the rows into different
   * kernels, which sum in different orders.
   */
  maxAbsDiff: number;
  /** Largest |output|, the scale maxAbsDiff compares with. */
  maxAbsOut: number;
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
  const stacked = shapes.map(([o, i]) => Tensor.from(uniformArray(M * o * i, 1 / Math.sqrt(i)), [M, o, i], { device, dtype }));
  const perMod = await Promise.all(stacked.map(async (w, p) => {
    const [o, i] = shapes[p];
    const data = (await w.data()) as Float32Array;
    return Array.from({ length: M }, (_, m) => Tensor.from(data.subarray(m * o * i, (m + 1) * o * i), [o, i], { device, dtype }));
  }));
  const xs = shapes.map(([, i]) => Tensor.from(uniformArray(rows * i, 1), [rows, i], { device }));
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
  // alternate the two ways, so both see the same machine
  const ts: [number[], number[]] = [[], []];
  const outs: Float32Array[][] = [[], []];
  for (let r = 0; r < 8; ++r)
    for (const [i, fn] of [masked, grouped].entries()) {
      let out: Tensor[] = [];
      const dt = await time(async () => { out = await fn(); });
      if (r > 0) ts[i].push(dt); // round 0 warms up
      if (r === 7) outs[i] = await Promise.all(out.map(async (t) => (await t.data()) as Float32Array));
      out.forEach((t) => t.dispose());
    }
  const a = { s: median(ts[0]), out: outs[0] }, b = { s: median(ts[1]), out: outs[1] };
  let maxAbsDiff = 0, maxAbsOut = 0;
  a.out.forEach((o, p) => o.forEach((v, i) => {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - b.out[p][i]));
    maxAbsOut = Math.max(maxAbsOut, Math.abs(v));
  }));
  for (const t of [...stacked, ...perMod.flat(), ...xs, modIds]) t.dispose();
  return { rows, modalities: M, maskedLoopSeconds: a.s, groupedSeconds: b.s, speedup: a.s / b.s, maxAbsDiff, maxAbsOut };
}

export interface VisionBlockResult {
  channels: number;
  tokens: number;
  batch: number;
  gatedCnn: { params: number; seconds: number; tokensPerSec: number };
  mamba: { params: number; seconds: number; tokensPerSec: number };
}

/**
 * MambaOut's comparison in small: one gated CNN block (no SSM) beside one Mamba block of the same
 * width (expand 2, state 16) on the same image-token sequence (a √T × √T grid for the CNN, the
 * raster order for the SSM), timed alternately on random weights.
 */
export async function measureVisionBlocks(C: number, T: number, batch: number, device: Device, dtype: WeightDType, reps: number): Promise<VisionBlockResult> {
  const h = gatedHidden(C);
  const gatedParams = 2 * C + 2 * h * C + 2 * h + 49 * C + C + h * C + C;
  const json = { model_type: 'mamba', hidden_size: C, num_hidden_layers: 1, vocab_size: 2, state_size: 16, expand: 2, conv_kernel: 4 };
  const cfg = parseMambaConfig(json, 'vision-bench mamba block');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-bench-block-'));
  try {
    await writeCheckpoint(dir, json, cfg, randomWeights(cfg), 'F32');
    const model = await loadLanguageModel(dir, { device, dtype });
    const x = Tensor.from(uniformArray(batch * T * C, 1), [batch, T, C], { device });
    const g: number[] = [], m: number[] = [];
    for (let r = 0; r < reps + 1; ++r) {
      const tg = (await benchGatedBlock({ batch, tokens: T, channels: C, dtype, device, reps: 1 })).seconds;
      const tm = await time(async () => (await model.forward(x)).dispose());
      if (r > 0) g.push(tg), m.push(tm);
    }
    x.dispose();
    model.dispose();
    const block = (params: number, s: number) => ({ params, seconds: s, tokensPerSec: (batch * T) / s });
    // the 1-block model's final norm and 2-row head cost a few microseconds: the time is the block's
    return { channels: C, tokens: T, batch, gatedCnn: block(gatedParams, median(g)), mamba: block(mambaBlockParams({ D: C, N: 16, expand: 2, K: 4, L: 1, V: 2, prompt: 0, decodeSteps: 0 }), median(m)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
