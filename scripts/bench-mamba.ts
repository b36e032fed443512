// Mamba-1 end-to-end CPU benchmark: mambakit beside llama.cpp (node-llama-cpp's prebuilt CPU binary) on
// the same random weights (mambakit reads the HF safetensors checkpoint, llama.cpp a GGUF converted from
// the same tensors), the same thread count, f32 and bf16 weights, at the mamba-130m and mamba-370m shapes:
// prefill tokens/s (one 512-token prompt, next token picked greedily) and decode tokens/s (batch 1 and 8,
// greedy, one token per sequence per step), and mambakit's memory against its weight bytes.
//   node dist/scripts/bench-mamba.js [--models 130m,370m] [--dtypes f32,bf16] [--threads 2] [--prompt 512]
//        [--steps 32] [--reps 3] [--cache bench/.cache] [--out bench/results/mamba-cpu.json] [--no-llama]
//        [--llama-extra-threads 1]   (llama.cpp also at these thread counts, as a supplementary figure; '' for none)
// Each measurement runs in a process of its own (mambakit's peakBytes is process-wide and never resets;
// llama.cpp runs in scripts/llama-cpp-worker.mjs), one after another. Random checkpoints and GGUFs are
// written once and cached under --cache (git-ignored); writing the 370m ones takes a minute.
import { fork } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { Tensor, loadLanguageModel, memory, ops, setThreads } from '../lib';
import type { WeightDType } from '../lib';
import { writeMambaGguf } from '../test/helpers/gguf';
import { LlamaCpp, repoRoot } from '../test/helpers/llama-cpp';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../test/helpers/mamba-ckpt';
import { arg, machine, median, writeResults } from './bench-util';

const MODELS: Record<string, MambaShape> = {
  '130m': { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4 },
  '370m': { D: 1024, L: 48, V: 50280, N: 16, expand: 2, K: 4 },
  // a small shape for trying the script out
  tiny: { D: 128, L: 2, V: 1000, N: 16, expand: 2, K: 4 },
};

type DT = Extract<WeightDType, 'f32' | 'bf16'>;

interface Job { kind: 'mambakit'; dir: string; shape: MambaShape; dtype: DT; threads: number; prompt: number[]; prompts8: number[][]; steps: number; reps: number }

interface Figures {
  /** tokens/s from the median of the timed runs */
  prefillTokS: number;
  decodeB1TokS: number;
  decodeB8TokS: number | null;
  /** tokens/s of the fastest run (less sensitive to other load on a shared machine) */
  best: { prefillTokS: number; decodeB1TokS: number; decodeB8TokS: number | null };
  samples: { prefillS: number[]; decodeB1S: number[]; decodeB8S: number[] };
}

function figures(promptTokens: number, steps: number, prefillS: number[], decodeB1S: number[], decodeB8S: number[]): Figures {
  const rate = (n: number, ts: number[], f: (x: number[]) => number): number | null => (ts.length ? n / f(ts) : null);
  const best = (ts: number[]): number => Math.min(...ts);
  return {
    prefillTokS: rate(promptTokens, prefillS, median) as number,
    decodeB1TokS: rate(steps, decodeB1S, median) as number,
    decodeB8TokS: rate(8 * steps, decodeB8S, median),
    best: { prefillTokS: rate(promptTokens, prefillS, best) as number, decodeB1TokS: rate(steps, decodeB1S, best) as number, decodeB8TokS: rate(8 * steps, decodeB8S, best) },
    samples: { prefillS, decodeB1S, decodeB8S },
  };
}

interface MambakitResult extends Figures {
  memory: { weightBytes: number; liveBytesAfterLoad: number; peakBytesAfterLoad: number; peakBytes: number; peakOverWeights: number; stateBytesBatch8: number; processPeakRssBytes: number };
}

interface LlamaResult extends Figures {
  threads: number;
  ggufBytes: number;
  ggufDtype: string;
  processPeakRssBytes: number;
  notes: string[];
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

function rand(n: number, hi: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.random() * hi));
}

function rEff(s: MambaShape): number {
  return s.R === undefined || s.R === 'auto' ? Math.ceil(s.D / 16) : s.R;
}

/** Bytes mambakit holds for the weights: GEMM matrices and the embedding in `dtype`, the rest f32. */
function weightBytes(s: MambaShape, dtype: DT): number {
  const E = s.expand * s.D, R = rEff(s);
  const w = dtype === 'f32' ? 4 : 2;
  const mats = s.V * s.D + (s.tied === false ? s.V * s.D : 0) + s.L * (2 * E * s.D + (R + 2 * s.N) * E + E * R + s.D * E);
  const f32s = s.D + s.L * (s.D + E * s.K + E + E + s.N * E + E);
  return mats * w + f32s * 4;
}

const params = (s: MambaShape): number => {
  const E = s.expand * s.D, R = rEff(s);
  return s.V * s.D + s.D + s.L * (s.D + 2 * E * s.D + E * s.K + E + (R + 2 * s.N) * E + E * R + E + E * s.N + E + s.D * E);
};

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

// ---- the mambakit measurement, in a child process ------------------------------------------------
async function runMambakit(job: Job): Promise<MambakitResult> {
  setThreads(job.threads);
  const base = memory().cpu.bytes;
  const model = await loadLanguageModel(job.dir, { dtype: job.dtype });
  const live = memory().cpu.bytes - base;
  const peakAfterLoad = memory().cpu.peakBytes;

  // greedy next token from logits [B, V]
  const pick = async (logits: Tensor): Promise<number[]> => {
    const ids = await ops.argmax(logits);
    const v = Array.from((await ids.data()) as Int32Array);
    ids.dispose();
    logits.dispose();
    return v;
  };

  const prefillS: number[] = [];
  for (let r = 0; r <= job.reps; ++r) {
    const state = model.newState(1);
    const t0 = now();
    await pick(await model.prefill([job.prompt], state));
    if (r > 0) prefillS.push(now() - t0); // run 0 warms up
    state.dispose();
  }

  const decode = async (prompts: number[][]): Promise<number[]> => {
    const B = prompts.length;
    const times: number[] = [];
    for (let r = 0; r <= job.reps; ++r) {
      const state = model.newState(B);
      let ids = await pick(await model.prefill(prompts, state));
      const steps = r === 0 ? Math.min(4, job.steps) : job.steps;
      const t0 = now();
      for (let s = 0; s < steps; ++s) ids = await pick(await model.step(ids, state));
      if (r > 0) times.push(now() - t0);
      state.dispose();
    }
    return times;
  };
  const decodeB1S = await decode(job.prompts8.slice(0, 1));
  const decodeB8S = await decode(job.prompts8);
  model.dispose();
  const peak = memory().cpu.peakBytes;
  const s = job.shape;
  const wb = weightBytes(s, job.dtype);
  const T = job.prompt.length;
  return {
    ...figures(T, job.steps, prefillS, decodeB1S, decodeB8S),
    memory: {
      weightBytes: wb, liveBytesAfterLoad: live, peakBytesAfterLoad: peakAfterLoad, peakBytes: peak, peakOverWeights: peak / wb,
      // the recurrent state of the batch-8 decode (conv windows + SSM states, f32), part of the peak
      stateBytesBatch8: s.L * 8 * (s.K - 1 + s.N) * s.expand * s.D * 4,
      processPeakRssBytes: peakRss(),
    },
  };
}

function inChild(job: Job): Promise<MambakitResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--child'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.on('message', (m: { ok: boolean; result?: MambakitResult; error?: string }) => {
      done = true;
      if (m.ok) resolve(m.result as MambakitResult);
      else reject(new Error(`mambakit child: ${m.error}`));
      child.disconnect();
    });
    child.on('exit', (code) => { if (!done) reject(new Error(`mambakit child exited with code ${code}`)); });
    child.send(job);
  });
}

// ---- llama.cpp -------------------------------------------------------------------------------------
let llamaInfo: Record<string, unknown> | null = null;

async function runLlama(gguf: string, ggufDtype: string, threads: number, prompt: number[], prompts8: number[][], steps: number, reps: number): Promise<LlamaResult> {
  const notes: string[] = [];
  const l = await LlamaCpp.start(threads);
  llamaInfo ??= { nodeLlamaCpp: l.version, llamaCppRelease: l.init?.llamaCppRelease, systemInfo: l.init?.systemInfo?.trim(), binary: '@node-llama-cpp/linux-x64 (prebuilt CPU)' };
  try {
    const loaded = await l.load(gguf, { threads, contextSize: 2048, batchSize: Math.max(512, prompt.length), sequences: 8 });
    if (loaded.threads !== threads) notes.push(`context reports ${loaded.threads} threads`);
    const prefillS = (await l.prefill(prompt, reps + 1)).slice(1);
    await l.decode(prompts8.slice(0, 1), Math.min(4, steps), 1); // warm-up
    const decodeB1S = await l.decode(prompts8.slice(0, 1), steps, reps);
    let decodeB8S: number[] = [];
    try {
      await l.decode(prompts8, Math.min(4, steps), 1);
      decodeB8S = await l.decode(prompts8, steps, reps);
      notes.push('decode batch 8: 8 sequences of one context; node-llama-cpp batches their tokens into one llama_decode per step');
    } catch (e) {
      notes.push(`decode batch 8 failed: ${(e as Error).message.split('\n')[0]}`);
    }
    return {
      threads,
      ...figures(prompt.length, steps, prefillS, decodeB1S, decodeB8S),
      ggufBytes: fs.statSync(gguf).size,
      ggufDtype,
      processPeakRssBytes: l.peakRssBytes(),
      notes,
    };
  } finally {
    await l.close();
  }
}

// ---- cached checkpoints ----------------------------------------------------------------------------
async function checkpoint(cache: string, name: string, s: MambaShape): Promise<{ dir: string; gguf: Record<DT, string> }> {
  const dir = path.join(cache, `mamba-${name}-D${s.D}-L${s.L}-V${s.V}`);
  const meta = path.join(dir, 'bench-meta.json');
  const gguf = { f32: path.join(dir, 'model-F32.gguf'), bf16: path.join(dir, 'model-BF16.gguf') };
  if (fs.existsSync(meta)) return { dir, gguf };
  fs.rmSync(dir, { recursive: true, force: true });
  const t0 = now();
  process.stdout.write(`writing random ${name} checkpoint to ${dir} … `);
  const w = randomMambaWeights(s);
  await writeMambaCheckpoint(dir, s, w);
  writeMambaGguf(gguf.f32, s, w, { dtype: 'F32', name: `mambakit-random-${name}` });
  writeMambaGguf(gguf.bf16, s, w, { dtype: 'BF16', name: `mambakit-random-${name}` });
  fs.writeFileSync(meta, JSON.stringify({ shape: s, written: new Date().toISOString() }, null, 2));
  console.log(`${(now() - t0).toFixed(0)} s`);
  return { dir, gguf };
}

// ---- main --------------------------------------------------------------------------------------------
const fmt = (x: number | null | undefined, d = 1): string => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(d));
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const root = repoRoot();
  const models = arg('models', '130m,370m').split(',');
  const dtypes = arg('dtypes', 'f32,bf16').split(',') as DT[];
  const threads = Number(arg('threads', '2'));
  const promptLen = Number(arg('prompt', '512'));
  const steps = Number(arg('steps', '32'));
  const reps = Number(arg('reps', '3'));
  const cache = path.resolve(root, arg('cache', 'bench/.cache'));
  const out = path.resolve(root, arg('out', 'bench/results/mamba-cpu.json'));
  const withLlama = !process.argv.includes('--no-llama');
  // llama.cpp again at these thread counts, beside the same-count run (its spin barriers fare badly on
  // a 2-vCPU VM, where one thread can be faster than two)
  const extraThreads = arg('llama-extra-threads', '1').split(',').filter(Boolean).map(Number).filter((t) => t !== threads);
  setThreads(threads);
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${threads} threads used, ${m.cpuFeatures}`);

  const rows: unknown[] = [];
  const table: string[][] = [];
  for (const name of models) {
    const s = MODELS[name];
    if (!s) throw new Error(`unknown model '${name}' (have ${Object.keys(MODELS).join(', ')})`);
    const { dir, gguf } = await checkpoint(cache, name, s);
    const prompt = rand(promptLen, s.V);
    const prompts8 = Array.from({ length: 8 }, () => rand(8, s.V));
    for (const dtype of dtypes) {
      console.log(`\n${name} ${dtype}: mambakit (${threads} threads) …`);
      const mk = await inChild({ kind: 'mambakit', dir, shape: s, dtype, threads, prompt, prompts8, steps, reps });
      const llamaRuns: (LlamaResult | { threads: number; error: string })[] = [];
      if (withLlama) {
        for (const t of [threads, ...extraThreads]) {
          console.log(`${name} ${dtype}: llama.cpp (${t} thread${t > 1 ? 's' : ''}) …`);
          try {
            const r = await runLlama(gguf[dtype], dtype === 'f32' ? 'F32' : 'BF16 (matrices; norms, conv, A, D, biases F32)', t, prompt, prompts8, steps, reps);
            if (dtype === 'bf16') r.notes.push('llama.cpp runs BF16 weights natively on the CPU; ggml converts the activations to bf16 for the dot products (mambakit keeps f32 activations)');
            llamaRuns.push(r);
          } catch (e) {
            llamaRuns.push({ threads: t, error: (e as Error).message });
          }
        }
      }
      const okRun = (r: LlamaResult | { threads: number; error: string } | undefined): LlamaResult | null => (r && !('error' in r) ? r : null);
      const same = okRun(llamaRuns[0]);
      const other = okRun(llamaRuns[1]);
      const ratio = (a: number | null, b: number | null | undefined): number | null => (a != null && b ? a / b : null);
      rows.push({
        model: `mamba-${name}`, shape: { ...s, E: s.expand * s.D, R: rEff(s) }, params: params(s), dtype,
        mambakit: { threads, ...mk },
        llamaCpp: llamaRuns[0] ?? null,
        mambakitOverLlamaCpp: same ? { prefill: ratio(mk.prefillTokS, same.prefillTokS), decodeB1: ratio(mk.decodeB1TokS, same.decodeB1TokS), decodeB8: ratio(mk.decodeB8TokS, same.decodeB8TokS) } : null,
        ...(llamaRuns.length > 1 ? { llamaCppOtherThreads: llamaRuns.slice(1) } : {}),
      });
      const cell = (a: number | null | undefined, b: number | null | undefined, c: number | null | undefined, d: number): string =>
        `${fmt(a, d)} / ${fmt(b, d)}${extraThreads.length && withLlama ? ` (${fmt(c, d)})` : ''}`;
      table.push([
        `${name} ${dtype}`,
        cell(mk.prefillTokS, same?.prefillTokS, other?.prefillTokS, 1),
        cell(mk.decodeB1TokS, same?.decodeB1TokS, other?.decodeB1TokS, 2),
        cell(mk.decodeB8TokS, same?.decodeB8TokS, other?.decodeB8TokS, 2),
        `${mib(mk.memory.peakBytes)} / ${mib(mk.memory.weightBytes)} = ${mk.memory.peakOverWeights.toFixed(3)}`,
      ]);
      for (const r of llamaRuns) if ('error' in r) console.log(`  llama.cpp (${r.threads} threads) failed: ${r.error.split('\n')[0]}`);
      console.log(`  ${table[table.length - 1].join(' | ')}`);
    }
  }

  const lhead = `mambakit / llama.cpp ${threads}t${extraThreads.length && withLlama ? ` (llama.cpp ${extraThreads.join(',')}t)` : ''}`;
  console.log(`\ntokens/s, ${lhead}; medians of ${reps} runs`);
  const head = ['model dtype', `prefill ${promptLen}`, 'decode batch 1', 'decode batch 8', 'mambakit peak / weights'];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}`);

  writeResults(out, {
    benchmark: 'mamba-e2e', device: 'cpu', machine: m, threads,
    dtype: 'weights f32 or bf16 (GEMM matrices + embedding; norms, conv, A, D, biases f32); activations f32 in mambakit',
    settings: { promptTokens: promptLen, decodeSteps: steps, reps, decodeBatches: [1, 8], sampling: 'greedy (argmax of the last logits) in both', weights: 'random (test/helpers/mamba-ckpt.ts), the same tensors for both' },
    reference: withLlama ? {
      name: 'llama.cpp through node-llama-cpp', ...(llamaInfo ?? {}),
      setup: 'tools/llama-cpp (scripts/llama-cpp-setup.js), driven by scripts/llama-cpp-worker.mjs in its own process; GGUF written by test/helpers/gguf.ts from the same weights',
      timing: 'inside the worker: controlledEvaluate from a fresh sequence state (prefill: the prompt in one batch, greedy next token); decode: one greedy token per sequence per step',
    } : null,
    memoryGoal: 'mambakit peakBytes ≤ weight bytes + 10% (peakBytes: mambakit\'s own tensor accounting over the whole run, which includes the batch-8 decode state; processPeakRssBytes: the process\'s VmHWM, Node itself included)',
    note: 'shared, noisy 2-core VM: figures are medians of the timed runs (the first run warms up); expect ±10–20% run to run',
    rows,
  });
}

if (process.argv.includes('--child')) {
  process.once('message', (job: Job) => {
    runMambakit(job).then(
      (result) => process.send?.({ ok: true, result }),
      (e: unknown) => process.send?.({ ok: false, error: e instanceof Error ? e.stack : String(e) }),
    );
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
