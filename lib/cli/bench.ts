// `mambakit bench`: the dense-vs-sparse benchmark, the project's main job. Built-in configurations
// with random weights (no download): dense Mamba, MoE-Mamba (8/16/32 experts top-1, 16 experts
// top-2) and Mixture-of-Mamba (2 and 3 modalities) at matched active parameters per token, plus the
// Mixture-of-Mamba projections done as the seed's masked loop vs one grouped GEMM. Checkpoints are
// written and peak memory measured in a child process per configuration (clean counters); speed is
// timed with every configuration loaded in one child, round-robin (fair on a noisy machine). Prints a
// table, writes JSON and an SVG chart.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';

import { WeightDType, isWeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { cudaAvailable, setThreads } from '../runtime';
import type { Device } from '../tensor';
import { benchChart } from '../bench/chart';
import { CONFIG_IDS, ConfigId, SIZES, SizeName } from '../bench/configs';
import { machine } from '../bench/machine';
import { ConfigResult, MemoryResult, ProjectionResult, SpeedResult, VisionBlockResult, configResult, measureMemory, measureProjections, measureSpeed, measureVisionBlocks, writeConfig } from '../bench/measure';

export const BENCH_USAGE = `usage: mambakit bench [options]      (dense vs MoE-Mamba vs Mixture-of-Mamba, random weights)
  --size tiny|small|base (small)   --device cpu|cuda|cuda:N (cpu)   --dtype bf16|f32|f16 (bf16)
  --configs ${CONFIG_IDS.join(',')} (all)   --no-projections   --no-vision   --threads N
  --rounds N (8; tiny 2)   --out FILE (mambakit-bench.json)   --chart FILE (mambakit-bench.svg)`;

const RESULT = '@@mambakit-bench-result ';

interface Opts { size: SizeName; device: Device; dtype: WeightDType; threads?: number; rounds: number }

// Child mode: one measurement, its JSON on a marked stdout line. Specs: write:ID:DIR, memory:ID:DIR,
// speed:ID1,ID2,...:DIR1,DIR2,..., proj:M:ROWS, vision.
async function child(spec: string, o: Opts): Promise<void> {
  if (o.threads) setThreads(o.threads);
  const [kind, a, b] = spec.split(':');
  const size = SIZES[o.size];
  let r: unknown = null;
  if (kind === 'write') await writeConfig(a as ConfigId, size, b);
  else if (kind === 'memory') r = await measureMemory(a as ConfigId, size, b, o.device, o.dtype);
  else if (kind === 'speed') r = await measureSpeed(a.split(',') as ConfigId[], size, b.split(','), o.device, o.dtype, o.rounds);
  else if (kind === 'vision' && size.vision) r = await measureVisionBlocks(size.vision.C, size.vision.T, size.vision.batch, o.device, o.dtype, o.rounds);
  else r = await measureProjections(size, Number(a), Number(b), o.device, o.dtype);
  process.stdout.write(RESULT + JSON.stringify(r) + '\n');
}

function runChild<T>(spec: string, o: Opts): Promise<T> {
  const args = [process.argv[1], 'bench', '--child', spec, '--size', o.size, '--device', o.device, '--dtype', o.dtype, '--rounds', String(o.rounds)];
  if (o.threads) args.push('--threads', String(o.threads));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--max-old-space-size=8192', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT));
      if (code !== 0 || !line) reject(new MambakitError('E_ARG', `bench ${spec}: the measurement process failed (exit ${code})`));
      else resolve(JSON.parse(line.slice(RESULT.length)) as T);
    });
  });
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
const pad = (cells: string[], widths: number[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');

function table(results: ConfigResult[]): string {
  const dense = results.find((r) => r.id === 'dense');
  const head = ['config', 'params total/active (M)', 'MFLOP/tok', 'prefill tok/s', 'decode b1 tok/s', 'decode b16 tok/s', 'b1 step / dense', 'peak MiB', 'load max/mean'];
  const rows = results.map((r) => {
    const load = r.expertLoad ? r.expertLoad.reduce((m, v) => Math.max(m, v), 0) / (r.expertLoad.reduce((a, v) => a + v, 0) / r.expertLoad.length) : NaN;
    return [r.label, `${(r.totalParams / 1e6).toFixed(1)} / ${(r.activeParams / 1e6).toFixed(1)}`, (r.flopsPerToken / 1e6).toFixed(1),
      r.prefillTokensPerSec.toFixed(0), r.decodeTokensPerSec.batch1.toFixed(1), r.decodeTokensPerSec.batch16.toFixed(1),
      dense ? `${(r.decodeStepSeconds.batch1 / dense.decodeStepSeconds.batch1).toFixed(2)}×` : '-', mib(r.peakBytes), Number.isFinite(load) ? load.toFixed(2) : '-'];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [pad(head, widths), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => pad(r, widths))].join('\n');
}

export async function cmdBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' }, configs: { type: 'string' },
      out: { type: 'string' }, chart: { type: 'string' }, threads: { type: 'string' }, 'no-projections': { type: 'boolean' }, 'no-vision': { type: 'boolean' },
      child: { type: 'string' }, rounds: { type: 'string' },
    },
  });
  const size = (values.size ?? 'small') as SizeName;
  if (!(size in SIZES)) throw new MambakitError('E_ARG', `--size must be tiny, small or base, got '${size}'`);
  const dtype = (values.dtype ?? 'bf16') as WeightDType;
  if (!isWeightDType(dtype)) throw new MambakitError('E_ARG', `--dtype must be f32, bf16 or f16, got '${dtype}'`);
  const device = (values.device ?? 'cpu') as Device;
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new MambakitError('E_ARG', `--threads must be a positive integer, got '${values.threads}'`);
  const rounds = Number(values.rounds ?? (size === 'tiny' ? 2 : 8));
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new MambakitError('E_ARG', `--rounds must be a positive integer, got '${values.rounds}'`);
  const o: Opts = { size, device, dtype, threads, rounds };
  if (values.child) return child(values.child, o);
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new MambakitError('E_ARG', `--device must be cpu, cuda or cuda:N, got '${device}'`);
  if (device !== 'cpu' && !cudaAvailable())
    throw new MambakitError('E_DEVICE', `--device ${device}: no CUDA GPU is available (it needs a CUDA build of the addon and a GPU)`);

  const ids = (values.configs ?? CONFIG_IDS.join(',')).split(',').map((s) => s.trim()) as ConfigId[];
  for (const id of ids) if (!CONFIG_IDS.includes(id)) throw new MambakitError('E_ARG', `--configs: unknown config '${id}' (known: ${CONFIG_IDS.join(', ')})`);
  const s = SIZES[size];
  process.stderr.write(`mambakit bench: size ${size} (D=${s.D}, ${s.L} blocks, vocab ${s.V}), ${dtype} on ${device}; prompt ${s.prompt}, ${s.decodeSteps} decode steps\n`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-bench-'));
  const results: ConfigResult[] = [];
  try {
    const dirs = ids.map((id) => path.join(root, id));
    const mems: MemoryResult[] = [];
    for (const [i, id] of ids.entries()) {
      process.stderr.write(`  ${id}: random checkpoint … `);
      await runChild<null>(`write:${id}:${dirs[i]}`, o);
      const m = await runChild<MemoryResult>(`memory:${id}:${dirs[i]}`, o);
      process.stderr.write(`weights ${mib(m.weightBytes)} MiB, peak ${mib(m.peakBytes)} MiB\n`);
      mems.push(m);
    }
    process.stderr.write(`  timing all ${ids.length} configurations round-robin (${rounds} rounds) … `);
    const speeds = await runChild<SpeedResult[]>(`speed:${ids.join(',')}:${dirs.join(',')}`, o);
    process.stderr.write('done\n');
    ids.forEach((id, i) => results.push(configResult(id, s, speeds[i], mems[i])));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const proj: ProjectionResult[] = [];
  if (!values['no-projections'])
    for (const [M, rows] of [[3, s.prompt], [3, 16], [2, s.prompt]]) {
      process.stderr.write(`  projections, ${M} modalities × ${rows} rows … `);
      const r = await runChild<ProjectionResult>(`proj:${M}:${rows}`, o);
      process.stderr.write(`masked loop ${(r.maskedLoopSeconds * 1e3).toFixed(2)} ms, grouped ${(r.groupedSeconds * 1e3).toFixed(2)} ms (${r.speedup.toFixed(2)}×)\n`);
      proj.push(r);
    }

  let vision: VisionBlockResult | null = null;
  if (!values['no-vision'] && s.vision) {
    process.stderr.write(`  gated CNN block vs Mamba block, C ${s.vision.C}, ${s.vision.T} image tokens × ${s.vision.batch} … `);
    vision = await runChild<VisionBlockResult>('vision', o);
    process.stderr.write('done\n');
  }

  const m = machine();
  process.stdout.write('\n' + table(results) + '\n');
  if (proj.length > 0) {
    process.stdout.write('\nMixture-of-Mamba projections (in/x/dt/out_proj of one block): masked loop vs grouped GEMM\n');
    for (const p of proj) process.stdout.write(`  ${p.modalities} modalities, ${String(p.rows).padStart(4)} rows: ${(p.maskedLoopSeconds * 1e3).toFixed(2)} ms vs ${(p.groupedSeconds * 1e3).toFixed(2)} ms = ${p.speedup.toFixed(2)}× (max |diff| ${p.maxAbsDiff.toExponential(1)})\n`);
  }
  if (vision) {
    const v = vision;
    process.stdout.write(`\nMambaOut's comparison in small: one block of width ${v.channels} on ${v.batch} × ${v.tokens} image tokens\n`);
    for (const [name, b] of [['gated CNN block (MambaOut)', v.gatedCnn], ['Mamba block (expand 2, N 16)', v.mamba]] as const)
      process.stdout.write(`  ${name.padEnd(30)} ${(b.params / 1e6).toFixed(2)} M params  ${(b.seconds * 1e3).toFixed(2)} ms  ${b.tokensPerSec.toFixed(0)} tokens/s\n`);
  }
  const out = path.resolve(values.out ?? 'mambakit-bench.json');
  const chartFile = path.resolve(values.chart ?? 'mambakit-bench.svg');
  const shape = { ...s, dtype, device, decodeBatches: [1, 16], tokenMix: 'Mixture-of-Mamba prefill: text 96, image 256, text 64, speech 64, text 32 (3 modalities) / text 128, image 256, text 128 (2); decode b16 rows 50/30/20% (60/40%)' };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine: m, size, shape, results, projections: proj, visionBlocks: vision }, null, 2) + '\n');
  fs.mkdirSync(path.dirname(chartFile), { recursive: true });
  fs.writeFileSync(chartFile, benchChart(`mambakit bench — dense vs sparse Mamba (${size}, ${dtype}, ${device})`,
    `${m.cpu}, ${m.threads} threads${m.gpus.length ? ', ' + m.gpus.join(', ') : ''} · D=${s.D}, ${s.L} blocks, vocab ${s.V}, prompt ${s.prompt} · random weights · ${m.date.slice(0, 10)}`, results, proj, vision));
  process.stdout.write(`\nwrote ${out}\nwrote ${chartFile}\n`);
}
