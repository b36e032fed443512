// Serving benchmark: aggregate tokens/s and per-request latency (time to first token, inter-token
// gaps; p50/p99) with 1, 8, 32 and 64 concurrent streams over loopback HTTP (SSE), continuous
// batching on, at the mamba-130m shape with random weights.
//   node dist/scripts/bench-serve.js [--model 130m|tiny] [--dtype bf16|f32] [--streams 1,8,32,64]
//        [--tokens 64] [--prompt 32] [--cache bench/.cache] [--out bench/results/serve-cpu.json]
import * as fs from 'fs';
import * as path from 'path';

import { createServer, loadLanguageModel, memory } from '../lib';
import type { WeightDType } from '../lib';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../test/helpers/mamba-ckpt';
import { arg, machine, writeResults } from './bench-util';

const SHAPES: Record<string, MambaShape> = {
  '130m': { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4 },
  tiny: { D: 64, L: 2, V: 500, N: 16, expand: 2, K: 4 },
};

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
}

interface StreamTiming { ttftMs: number; gapsMs: number[]; tokens: number }

// One streaming request; times the first SSE event and the gaps between events.
async function stream(base: string, prompt: number[], maxTokens: number, seed: number): Promise<StreamTiming> {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0.8, seed, stream: true }),
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = '';
  let last = t0;
  let ttft = NaN;
  const gaps: number[] = [];
  let tokens = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (ev === 'data: [DONE]' || !ev.startsWith('data: ')) continue;
      const now = performance.now();
      const j = JSON.parse(ev.slice(6)) as { choices: { finish_reason: string | null }[] };
      if (j.choices[0].finish_reason !== null) continue; // the closing event carries no token
      if (tokens === 0) ttft = now - t0;
      else gaps.push(now - last);
      last = now;
      tokens++;
    }
  }
  return { ttftMs: ttft, gapsMs: gaps, tokens };
}

async function main(): Promise<void> {
  const shapeName = arg('model', '130m');
  const s = SHAPES[shapeName];
  const dtype = arg('dtype', 'bf16') as WeightDType;
  const streams = arg('streams', '1,8,32,64').split(',').map(Number);
  const maxTokens = Number(arg('tokens', '64'));
  const promptLen = Number(arg('prompt', '32'));
  const cache = path.resolve(arg('cache', 'bench/.cache'));
  const out = arg('out', 'bench/results/serve-cpu.json');
  const dir = path.join(cache, `serve-${shapeName}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    console.log(`writing a random ${shapeName} checkpoint to ${dir} …`);
    await writeMambaCheckpoint(dir, s, randomMambaWeights(s), { dtype: 'BF16' });
  }
  const model = await loadLanguageModel(dir, { dtype });
  const pps = arg('prefills-per-step', '');
  const app = createServer(model, { modelName: shapeName, maxBatch: Math.max(...streams), maxQueue: 1024, maxPrefillsPerStep: pps ? Number(pps) : undefined });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const m = machine();
  console.log(`${m.cpu}, ${m.threads} threads; ${shapeName} ${dtype}; prompt ${promptLen}, ${maxTokens} tokens per request`);
  const prompt = (k: number) => Array.from({ length: promptLen }, (_, i) => (k * 7919 + i * 104729) % s.V);
  await stream(base, prompt(0), 4, 0); // warm-up
  const rows = [];
  for (const c of streams) {
    const t0 = performance.now();
    const runs = await Promise.all(Array.from({ length: c }, (_, k) => stream(base, prompt(k + 1), maxTokens, k)));
    const wall = (performance.now() - t0) / 1000;
    const tokens = runs.reduce((a, r) => a + r.tokens, 0);
    const ttft = runs.map((r) => r.ttftMs);
    const gaps = runs.flatMap((r) => r.gapsMs);
    const row = {
      streams: c, tokens, wallS: wall, aggregateTokS: tokens / wall,
      ttftMs: { p50: pct(ttft, 0.5), p99: pct(ttft, 0.99) }, interTokenMs: { p50: pct(gaps, 0.5), p99: pct(gaps, 0.99) },
    };
    rows.push(row);
    console.log(`${String(c).padStart(3)} streams: ${row.aggregateTokS.toFixed(1).padStart(7)} tok/s aggregate, ` +
      `TTFT p50 ${row.ttftMs.p50.toFixed(0)} ms p99 ${row.ttftMs.p99.toFixed(0)} ms, inter-token p50 ${row.interTokenMs.p50.toFixed(1)} ms p99 ${row.interTokenMs.p99.toFixed(1)} ms`);
  }
  const one = rows.find((r) => r.streams === 1);
  const r32 = rows.find((r) => r.streams === 32);
  const scaling = one && r32 ? r32.aggregateTokS / one.aggregateTokS : null;
  if (scaling !== null) console.log(`32 streams / 1 stream aggregate: ${scaling.toFixed(1)}× (goal ≥ 6×)`);
  await app.close();
  writeResults(out, {
    benchmark: 'serve', device: 'cpu', machine: m, model: { shape: shapeName, ...s, dtype, weights: 'random' },
    settings: { promptTokens: promptLen, maxTokens, temperature: 0.8, transport: 'HTTP/1.1 loopback, SSE (server and client in one process)' },
    rows, scaling32over1: scaling, goal: { scaling32over1: 6 }, memory: memory().cpu,
  });
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
