// Soak test (not part of CI): N concurrent streams over loopback for M minutes, a random share of
// them aborted mid-stream by the client; samples host RSS and device memory every 10 s and checks
// that every slot comes back and nothing rejects unhandled.
//   node dist/scripts/soak-serve.js [--model 130m|tiny] [--streams 64] [--minutes 10] [--abort 0.3]
//        [--out bench/results/soak-cpu.json]
import * as fs from 'fs';
import * as path from 'path';

import { createServer, loadLanguageModel, memory } from '../lib';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../test/helpers/mamba-ckpt';
import { arg, machine, writeResults } from './bench-util';

const SHAPES: Record<string, MambaShape> = {
  '130m': { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4 },
  tiny: { D: 64, L: 2, V: 500, N: 16, expand: 2, K: 4 },
};

let unhandled = 0;
process.on('unhandledRejection', (e) => { unhandled++; console.error('unhandled rejection:', e); });

async function main(): Promise<void> {
  const shapeName = arg('model', '130m');
  const s = SHAPES[shapeName];
  const nStreams = Number(arg('streams', '64'));
  const minutes = Number(arg('minutes', '10'));
  const abortShare = Number(arg('abort', '0.3'));
  const dir = path.resolve(arg('cache', 'bench/.cache'), `serve-${shapeName}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) await writeMambaCheckpoint(dir, s, randomMambaWeights(s), { dtype: 'BF16' });
  const model = await loadLanguageModel(dir, { dtype: 'bf16' });
  const app = createServer(model, { modelName: shapeName, maxBatch: nStreams, maxQueue: 4 * nStreams });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const end = Date.now() + minutes * 60_000;
  const counts = { completed: 0, aborted: 0, failed: 0, tokens: 0 };
  const samples: { tS: number; rssMiB: number; liveMiB: Record<string, number>; running: number; waiting: number }[] = [];
  const t0 = Date.now();
  const sampler = setInterval(() => {
    const mem = memory();
    samples.push({
      tS: (Date.now() - t0) / 1000, rssMiB: process.memoryUsage().rss / 2 ** 20,
      liveMiB: Object.fromEntries(Object.entries(mem).map(([k, v]) => [k, v.bytes / 2 ** 20])), ...model.load,
    });
    const last = samples[samples.length - 1];
    console.log(`${last.tS.toFixed(0)} s: RSS ${last.rssMiB.toFixed(0)} MiB, live ${JSON.stringify(last.liveMiB)}, running ${last.running}, ` +
      `completed ${counts.completed}, aborted ${counts.aborted}, failed ${counts.failed}`);
  }, 10_000);

  async function worker(k: number): Promise<void> {
    while (Date.now() < end) {
      const ac = new AbortController();
      const abortAfter = Math.random() < abortShare ? 1 + Math.floor(Math.random() * 20) : Infinity;
      try {
        const r = await fetch(`${base}/v1/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
          body: JSON.stringify({ prompt: Array.from({ length: 8 + (k % 24) }, (_, i) => (k * 31 + i * 7) % s.V), max_tokens: 16 + Math.floor(Math.random() * 48), temperature: 0.9, stream: true }),
        });
        const reader = (r.body as ReadableStream<Uint8Array>).getReader();
        let events = 0;
        for (;;) {
          const { done } = await reader.read();
          if (done) break;
          if (++events >= abortAfter) { ac.abort(); break; }
        }
        counts.tokens += events;
        if (abortAfter === Infinity) counts.completed++;
        else counts.aborted++;
      } catch (e) {
        if ((e as Error).name === 'AbortError') counts.aborted++;
        else { counts.failed++; console.error(e); }
      }
    }
  }
  await Promise.all(Array.from({ length: nStreams }, (_, k) => worker(k)));
  clearInterval(sampler);
  for (let i = 0; i < 200 && model.load.running + model.load.waiting > 0; ++i) await new Promise((r) => setTimeout(r, 50));
  const finalLoad = model.load;
  await app.close();
  const steady = samples.slice(Math.floor(samples.length / 4)); // after warm-up
  const rss = steady.map((x) => x.rssMiB);
  const result = {
    benchmark: 'soak-serve', machine: machine(), model: shapeName, streams: nStreams, minutes, abortShare, counts, unhandledRejections: unhandled,
    finalLoad, slotsAllReturned: finalLoad.running === 0 && finalLoad.waiting === 0 && finalLoad.freeSlots === nStreams,
    rssMiB: { min: Math.min(...rss), max: Math.max(...rss), first: rss[0], last: rss[rss.length - 1] }, samples,
  };
  console.log(JSON.stringify({ counts, unhandled, finalLoad, rssMiB: result.rssMiB }));
  writeResults(arg('out', 'bench/results/soak-cpu.json'), result);
  model.dispose();
  process.exit(result.slotsAllReturned && unhandled === 0 && counts.failed === 0 ? 0 : 1);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
