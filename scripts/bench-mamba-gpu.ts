// Mamba-1 on a CUDA GPU: the device-to-device copy bandwidth measured in this run (the reference), the
// fused selective scan's throughput against it, and whole models (random weights at the mamba-130m and
// mamba-1.4b shapes, bf16 and f32 weights): prefill tokens/s, greedy decode tokens/s and latency per step
// at batch 1 and 8 beside the weight-read floor, and the 130m model's logits on CUDA against the CPU.
//   node --max-old-space-size=16384 dist/scripts/bench-mamba-gpu.js [--models 130m,1.4b] [--dtypes bf16,f32]
//        [--prompt 512] [--steps 32] [--reps 3] [--cache /tmp/mambakit-bench] [--out bench/results/mamba-gpu.json]
// Random BF16 checkpoints are written once per machine under --cache, one tensor at a time (1.4b: 2.8 GB).
// Every eager op and every model call waits for the GPU before its promise settles (a ~10-20 µs sync each).
import * as fs from 'fs';
import * as path from 'path';

import { Tensor, cudaAvailable, emptyCache, info, loadLanguageModel, memory, ops } from '../lib';
import { f32ToBf16Bits } from '../lib/dtype';
import { PKG_ROOT } from '../lib/native';
import { MambaShape, mambaConfigJson, randomMambaWeights, tensorShapes } from '../test/helpers/mamba-ckpt';
import { randInt, uniform } from '../test/helpers/random';
import { arg, machine, median, writeResults } from './bench-util';

const MODELS: Record<string, MambaShape> = {
  '130m': { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4 },
  '1.4b': { D: 2048, L: 48, V: 50280, N: 16, expand: 2, K: 4 },
  tiny: { D: 128, L: 2, V: 1000, N: 16, expand: 2, K: 4 }, // for trying the script out
};
type DT = 'f32' | 'bf16';
interface Decode { batch: number; msPerStep: number; tokS: number; stepOnlyMs: number; floorMs: number | null; overFloor: number | null; stepOnlyOverFloor: number | null }
interface ModelRow { model: string; dtype: DT; shape: MambaShape; weightBytes: number; deviceBytes: number; loadS: number; prefillTokS: number; prefillMs: number; decode: Decode[] }

const now = (): number => performance.now() / 1e3;
const tokens = (n: number, V: number): number[] => Array.from(randInt(n, V));
const rEff = (s: MambaShape): number => (s.R === undefined || s.R === 'auto' ? Math.ceil(s.D / 16) : s.R);
const errors: { section: string; error: string }[] = [];

/** Bytes a step reads: GEMM matrices + embedding (= tied LM head) in `dtype`, the rest f32. */
function weightBytes(s: MambaShape, dtype: DT): number {
  const E = s.expand * s.D, R = rEff(s);
  const mats = s.V * s.D + s.L * (2 * E * s.D + (R + 2 * s.N) * E + E * R + s.D * E);
  return mats * (dtype === 'f32' ? 4 : 2) + 4 * (s.D + s.L * (s.D + E * s.K + 3 * E + s.N * E));
}

async function attempt<T>(section: string, f: () => Promise<T>): Promise<T | null> {
  try { return await f(); } catch (e) {
    errors.push({ section, error: e instanceof Error ? e.message : String(e) });
    console.error(`  ${section} FAILED: ${errors[errors.length - 1].error}`);
    return null;
  }
}

// ---- random BF16 checkpoint, streamed one tensor at a time -------------------------------------------
async function checkpoint(cache: string, name: string, s: MambaShape): Promise<string> {
  const dir = path.join(cache, `mamba-${name}-D${s.D}-L${s.L}-V${s.V}-bf16`);
  const meta = path.join(dir, 'bench-meta.json');
  if (fs.existsSync(meta)) return dir;
  const t0 = now();
  process.stdout.write(`writing random ${name} checkpoint to ${dir} … `);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(mambaConfigJson(s), null, 2));
  // one layer at a time through the test helper's initialization (V: 1 keeps its embedding tiny)
  const layer = (): Record<string, Float32Array> => randomMambaWeights({ ...s, L: 1, V: 1 });
  const p0 = 'backbone.layers.0.';
  let w = layer();
  const suffixes = Object.keys(w).filter((k) => k.startsWith(p0)).map((k) => k.slice(p0.length));
  const names = ['backbone.embeddings.weight', 'backbone.norm_f.weight'];
  for (let i = 0; i < s.L; ++i) names.push(...suffixes.map((x) => `backbone.layers.${i}.${x}`));
  const shapes = tensorShapes(s);
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const n of names) {
    const bytes = 2 * shapes[n].reduce((a, b) => a * b, 1);
    header[n] = { dtype: 'BF16', shape: shapes[n], data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const hj = Buffer.from(JSON.stringify(header), 'utf8');
  const hb = Buffer.concat([Buffer.alloc(8), hj, Buffer.from(' '.repeat((8 - (hj.length % 8)) % 8))]); // spaces pad to 8 bytes
  hb.writeBigUInt64LE(BigInt(hb.length - 8));
  const fh = await fs.promises.open(path.join(dir, 'model.safetensors'), 'w');
  const put = async (b: Uint8Array): Promise<void> => {
    for (let done = 0; done < b.byteLength; ) done += (await fh.write(b, done, b.byteLength - done)).bytesWritten;
  };
  const putBf16 = async (f: Float32Array): Promise<void> => {
    const u = new Uint16Array(f.length);
    for (let i = 0; i < f.length; ++i) u[i] = f32ToBf16Bits(f[i]);
    await put(new Uint8Array(u.buffer));
  };
  try {
    await put(hb);
    await putBf16(uniform(s.V * s.D, -1, 1)); // the embedding, initialized as randomMambaWeights does
    await putBf16(uniform(s.D, 0.8, 1.2));
    for (let i = 0; i < s.L; ++i) {
      if (i > 0) w = layer();
      for (const x of suffixes) await putBf16(w[p0 + x]);
    }
  } finally {
    await fh.close();
  }
  fs.writeFileSync(meta, JSON.stringify({ shape: s, written: new Date().toISOString() }, null, 2));
  console.log(`${(now() - t0).toFixed(0)} s`);
  return dir;
}

// ---- copy bandwidth and selective scan -----------------------------------------------------------
async function copyBandwidth(bytes: number, reps: number): Promise<{ bytes: number; GBs: number; bestGBs: number; samplesS: number[] }> {
  const src = Tensor.from(new Float32Array(bytes / 4), [bytes / 4], { device: 'cuda' });
  const samplesS: number[] = [];
  for (let r = 0; r <= reps; ++r) {
    const t0 = now();
    const c = await src.to('cuda');
    if (r > 0) samplesS.push(now() - t0); // run 0 allocates the destination
    c.dispose();
  }
  src.dispose();
  return { bytes, GBs: (2 * bytes) / median(samplesS) / 1e9, bestGBs: (2 * bytes) / Math.min(...samplesS) / 1e9, samplesS };
}

async function scanBench(B: number, T: number, E: number, N: number, reps: number, copyGBs: number): Promise<Record<string, number | string>> {
  const dev = { device: 'cuda' as const };
  const bte = uniform(B * T * E, -1, 1);
  const [u, dt, z] = [0, 1, 2].map(() => Tensor.from(bte, [B, T, E], dev)); // distinct device buffers
  const [Bm, C] = [0, 1].map(() => Tensor.from(uniform(B * T * N, -1, 1), [B, T, N], dev));
  const A = Tensor.from(Float32Array.from({ length: N * E }, (_, i) => -(1 + Math.floor(i / E))), [N, E], dev);
  const [D, dtBias] = [uniform(E, 0.5, 1.5), new Float32Array(E).fill(-4)].map((a) => Tensor.from(a, [E], dev)); // softplus(dt - 4): small steps
  const state = Tensor.from(uniform(B * N * E, -1, 1), [B, N, E], dev);
  const group = 8; // calls queued together: the executor runs them back to back
  const samples: number[] = [];
  for (let r = 0; r <= reps; ++r) {
    const t0 = now();
    const outs = await Promise.all(Array.from({ length: group }, () => ops.selectiveScan(u, dt, A, Bm, C, { D, z, dtBias, state })));
    if (r > 0) samples.push((now() - t0) / group);
    outs.forEach((o) => { o.y.dispose(); o.state.dispose(); });
  }
  [u, dt, z, Bm, C, A, D, dtBias, state].forEach((t) => t.dispose());
  const bytes = 4 * (4 * B * T * E + 2 * B * T * N + 2 * B * N * E + N * E + 2 * E), GBs = bytes / median(samples) / 1e9;
  return { shape: `B=${B} T=${T} E=${E} N=${N}`, bytesPerCall: bytes, ms: median(samples) * 1e3, GBs, ofCopyBandwidth: GBs / copyGBs };
}

// ---- whole models ------------------------------------------------------------------------------------
async function benchModel(name: string, dir: string, s: MambaShape, dtype: DT, promptLen: number, steps: number, reps: number, copyGBs: number): Promise<ModelRow> {
  const base = memory()['cuda:0']?.bytes ?? 0;
  let t0 = now();
  const model = await loadLanguageModel(dir, { device: 'cuda', dtype });
  const loadS = now() - t0;
  const deviceBytes = (memory()['cuda:0']?.bytes ?? 0) - base;
  const wb = weightBytes(s, dtype);
  const floorMs = Number.isFinite(copyGBs) ? (wb / (copyGBs * 1e9)) * 1e3 : null;
  const pick = async (logits: Tensor): Promise<number[]> => { // greedy: argmax on the device, ids read back
    using ids = await ops.argmax(logits);
    logits.dispose();
    return Array.from((await ids.data()) as Int32Array);
  };
  try {
    const prompt = tokens(promptLen, s.V);
    const prefillS: number[] = [];
    for (let r = 0; r <= reps; ++r) {
      const state = model.newState(1);
      t0 = now();
      await pick(await model.prefill([prompt], state));
      if (r > 0) prefillS.push(now() - t0); // run 0 warms up
      state.dispose();
    }
    const decode: Decode[] = [];
    for (const B of [1, 8]) {
      const state = model.newState(B);
      let ids = await pick(await model.prefill(Array.from({ length: B }, () => tokens(8, s.V)), state));
      ids = await pick(await model.step(ids, state)); // warm-up: captures the CUDA graph for this state
      const greedy: number[] = [], only: number[] = [];
      for (let r = 0; r < reps; ++r) {
        t0 = now();
        for (let k = 0; k < steps; ++k) ids = await pick(await model.step(ids, state)); // step + argmax + read back
        greedy.push((now() - t0) / steps);
        t0 = now();
        for (let k = 0; k < steps; ++k) (await model.step(ids, state)).dispose(); // the step alone
        only.push((now() - t0) / steps);
      }
      state.dispose();
      const ms = median(greedy) * 1e3, stepOnlyMs = median(only) * 1e3;
      decode.push({ batch: B, msPerStep: ms, tokS: (B * 1e3) / ms, stepOnlyMs, floorMs, overFloor: floorMs ? ms / floorMs : null, stepOnlyOverFloor: floorMs ? stepOnlyMs / floorMs : null });
    }
    const p = median(prefillS);
    return { model: `mamba-${name}`, dtype, shape: s, weightBytes: wb, deviceBytes, loadS, prefillTokS: promptLen / p, prefillMs: p * 1e3, decode };
  } finally {
    model.dispose();
    emptyCache();
  }
}

/** Relative L2 between the last position's logits on CUDA and on the CPU for a 64-token prompt. */
async function spotCheck(dir: string, s: MambaShape, dtype: DT): Promise<number> {
  const prompt = tokens(64, s.V);
  const last = async (device: 'cpu' | 'cuda'): Promise<Float32Array> => {
    const m = await loadLanguageModel(dir, { device, dtype });
    try {
      using lg = await m.forward([prompt]);
      return ((await lg.data()) as Float32Array).slice((prompt.length - 1) * s.V);
    } finally {
      m.dispose();
    }
  };
  const g = await last('cuda'), c = await last('cpu');
  let num = 0, den = 0;
  for (let i = 0; i < c.length; ++i) { num += (g[i] - c[i]) ** 2; den += c[i] ** 2; }
  return Math.sqrt(num / den);
}

// ---- main --------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  if (!cudaAvailable()) {
    const why = `CUDA not used: ${info().cuda.status}: ${info().cuda.reason}`;
    console.error(`bench-mamba-gpu: no CUDA GPU (cudaAvailable() is false: ${why}). Run it on a machine with an NVIDIA GPU.`);
    process.exit(1);
  }
  const models = arg('models', '130m,1.4b').split(',');
  const dtypes = arg('dtypes', 'bf16,f32').split(',') as DT[];
  const [promptLen, steps, reps] = [arg('prompt', '512'), arg('steps', '32'), arg('reps', '3')].map(Number);
  const cache = path.resolve(arg('cache', '/tmp/mambakit-bench'));
  const out = path.resolve(PKG_ROOT, arg('out', 'bench/results/mamba-gpu.json'));
  const m = machine();
  console.log(`machine: ${m.gpus.join('; ')}; ${m.cpu}, ${m.cores} cores`);

  const copy = await attempt('copy bandwidth', () => copyBandwidth(2 ** 30, 10));
  const copyGBs = copy?.GBs ?? NaN;
  console.log(`device-to-device copy (1 GiB f32, read + write): ${copyGBs.toFixed(0)} GB/s (best ${copy?.bestGBs.toFixed(0)})`);

  const scans: Record<string, number | string>[] = [];
  for (const [B, T, E] of [[8, 2048, 2048], [1, 4096, 5120]]) {
    const r = await attempt(`selective scan B=${B} T=${T} E=${E}`, () => scanBench(B, T, E, 16, 5, copyGBs));
    if (!r) continue;
    scans.push(r);
    console.log(`selective scan ${r.shape}: ${(r.ms as number).toFixed(3)} ms, ${(r.GBs as number).toFixed(0)} GB/s = ${(100 * (r.ofCopyBandwidth as number)).toFixed(0)}% of copy`);
  }

  const rows: ModelRow[] = [];
  const checks: { model: string; dtype: DT; relL2: number; goal: number; pass: boolean }[] = [];
  for (const name of models) {
    const s = MODELS[name];
    if (!s) throw new Error(`unknown model '${name}' (have ${Object.keys(MODELS).join(', ')})`);
    const dir = await checkpoint(cache, name, s);
    for (const dtype of dtypes) {
      console.log(`mamba-${name} ${dtype} …`);
      const r = await attempt(`mamba-${name} ${dtype}`, () => benchModel(name, dir, s, dtype, promptLen, steps, reps, copyGBs));
      if (r) {
        rows.push(r);
        const d = r.decode.map((x) => `b${x.batch} ${x.tokS.toFixed(0)} tok/s ${x.msPerStep.toFixed(3)} ms/step (step alone ${x.stepOnlyMs.toFixed(3)}, ${x.overFloor?.toFixed(2) ?? '—'}× floor)`);
        console.log(`  load ${r.loadS.toFixed(1)} s; prefill ${r.prefillTokS.toFixed(0)} tok/s; decode ${d.join('; ')}`);
      }
      if (name !== '130m' && name !== 'tiny') continue;
      const rel = await attempt(`spot check mamba-${name} ${dtype}`, () => spotCheck(dir, s, dtype));
      if (rel === null) continue;
      const goal = dtype === 'f32' ? 1e-4 : 2e-2;
      checks.push({ model: `mamba-${name}`, dtype, relL2: rel, goal, pass: rel < goal });
      console.log(`  last-position logits, CUDA vs CPU (64 tokens): relative L2 ${rel.toExponential(2)} (goal < ${goal}) ${rel < goal ? 'ok' : 'FAIL'}`);
    }
  }

  const head = ['model dtype', `prefill ${promptLen} tok/s`, 'decode b1 tok/s', 'b1 ms/step', 'b1 / floor', 'decode b8 tok/s', 'b8 ms/step'];
  const table = rows.map((r) => [`${r.model} ${r.dtype}`, r.prefillTokS.toFixed(0), r.decode[0].tokS.toFixed(0), r.decode[0].msPerStep.toFixed(3),
    r.decode[0].overFloor?.toFixed(2) ?? '—', r.decode[1].tokS.toFixed(0), r.decode[1].msPerStep.toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (t: string[]): string => t.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}`);
  const goal = rows.find((r) => r.model === 'mamba-1.4b' && r.dtype === 'bf16')?.decode[0];
  if (goal) console.log(`mamba-1.4b bf16 decode b1: ${goal.msPerStep.toFixed(3)} ms/step vs floor ${goal.floorMs?.toFixed(3)} ms = ${goal.overFloor?.toFixed(2)}× (goal ≤ 1.2)`);

  writeResults(out, {
    benchmark: 'mamba-gpu', device: 'cuda', machine: m,
    dtype: 'weights bf16 or f32 (GEMM matrices + embedding; norms, conv, A, D, biases f32); activations and SSM state f32',
    settings: { promptTokens: promptLen, decodeSteps: steps, reps, decodeBatches: [1, 8], checkpoints: 'random BF16 safetensors (test/helpers/mamba-ckpt.ts initialization), loaded as bf16 or f32' },
    reference: { copy, note: 'device-to-device copy of a 1 GiB f32 tensor (t.to("cuda")), GB/s = 2 × bytes / s (read + write), median of 10 after a warm-up; used as the read bandwidth for the floors' },
    selectiveScan: { note: 'ops.selectiveScan with D, z, dtBias and state, f32; 8 calls queued per timing, each includes its sync; bytes = u, dt, z, y (4·B·T·E·4) + B, C + state in/out + A, D, dtBias', rows: scans },
    models: { note: 'prefill: one prompt at batch 1 incl. argmax of the last logits, median of reps after a warm-up; decode: one warm-up step (captures the CUDA graph), then reps × steps greedy steps (step + argmax + read back of the ids); stepOnlyMs: the step call alone; floorMs = weightBytes / copy bandwidth', rows },
    correctness: { note: 'last-position logits of a 64-token forward, CUDA vs CPU, same weights and dtype', checks },
    goals: { scanOfCopyBandwidth: 0.8, decode14bBf16B1OverFloor: 1.2, relL2: { f32: 1e-4, bf16: 2e-2 } },
    errors,
  });
  if (errors.length) console.error(`${errors.length} section(s) failed: ${errors.map((e) => e.section).join(', ')}`);
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
