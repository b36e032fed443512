// GEMM benchmark: decode (1×D·Dᵀ, memory-bound), batched decode (32×D·Dᵀ) and prefill (512×D·Dᵀ,
// compute-bound) shapes for D = 768 and 2048 with f32 and bf16 weights, beside this machine's
// streaming-read bandwidth, f32 FMA peak and (where the bf16 GEMM uses it) VDPBF16PS peak measured in
// the same run, and a naive single-thread loop.
//   node dist/scripts/bench-gemm.js [--device cpu|cuda] [--out bench/results/gemm-cpu.json]
import { Tensor, ops, synchronize } from '../lib';
import { addon } from '../lib/native';
import { arg, machine, median, writeResults } from './bench-util';

type WDType = 'f32' | 'bf16' | 'f16';

interface Row {
  shape: string;
  /** kernel: back-to-back GEMMs in one native job (how model plans call it); eager: one ops.gemm promise each */
  mode: 'kernel' | 'eager';
  M: number; N: number; K: number;
  weights: WDType;
  ms: number;
  gflops: number;
  weightGBs: number;
  ofReadBandwidth: number;
  ofFmaPeak: number;
  /** bf16 rows above 4 rows on an AVX512-BF16 CPU: the fraction of the VDPBF16PS peak (null otherwise) */
  ofBf16DotPeak: number | null;
}

function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = Math.random() * 2 - 1;
  return a;
}

// Times `reps` GEMMs, either in one native job (kernel) or as eager ops, 4 queued at a time (eager),
// rotating over enough weight copies that decode reads them from DRAM, not from the 32 MiB L3.
async function timeGemm(device: 'cpu' | 'cuda', M: number, N: number, K: number, wdt: WDType, mode: 'kernel' | 'eager'): Promise<number> {
  const wbytes = N * K * (wdt === 'f32' ? 4 : 2);
  const copies = Math.max(1, Math.ceil((96 << 20) / wbytes));
  const x = Tensor.from(rand(M * K), [M, K], { device });
  const ws = Array.from({ length: copies }, () => Tensor.from(rand(N * K), [N, K], { dtype: wdt, device }));
  const reps = Math.max(copies, Math.min(200, Math.ceil(2e10 / (2 * M * N * K + wbytes * 50))));
  const samples: number[] = [];
  for (let trial = 0; trial < 4; ++trial) {
    if (mode === 'kernel') {
      const s = await addon.bench.gemmLoop(x.handle, ws.map((w) => w.handle), reps);
      if (trial > 0) samples.push(s * 1e3);
      continue;
    }
    await synchronize();
    const t0 = performance.now();
    // keep 4 in flight: enough to hide the JS round trip, few enough that outputs are recycled
    let inflight: Promise<void>[] = [];
    for (let r = 0; r < reps; ++r) {
      inflight.push(ops.gemm(x, ws[r % copies]).then((y) => y.dispose()));
      if (inflight.length === 4) { await Promise.all(inflight); inflight = []; }
    }
    await Promise.all(inflight);
    if (trial > 0) samples.push((performance.now() - t0) / reps); // trial 0 warms up
  }
  x.dispose();
  ws.forEach((w) => w.dispose());
  return median(samples);
}

async function main(): Promise<void> {
  const device = arg('device', 'cpu') as 'cpu' | 'cuda';
  const out = arg('out', `bench/results/gemm-${device}.json`);
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.threads} threads, ${m.cpuFeatures}; ${m.gpus.join('; ') || 'no GPU'}`);
  const readGBs = device === 'cpu' ? await addon.bench.streamRead(1024) : NaN;
  const fmaGflops = device === 'cpu' ? await addon.bench.fmaPeak() : NaN;
  const dotGflops = device === 'cpu' ? await addon.bench.bf16DotPeak() : 0;
  if (device === 'cpu') console.log(`ceilings (measured now): streaming read ${readGBs.toFixed(1)} GB/s, f32 FMA peak ${fmaGflops.toFixed(1)} GFLOP/s` +
    (dotGflops > 0 ? `, bf16 dot (VDPBF16PS) peak ${dotGflops.toFixed(1)} GFLOP/s` : ''));

  const rows: Row[] = [];
  for (const D of [768, 2048]) {
    for (const [label, M] of [['decode', 1], ['batch', 32], ['prefill', 512]] as const) {
      for (const [wdt, mode] of [['f32', 'kernel'], ['bf16', 'kernel'], ['f32', 'eager'], ['bf16', 'eager']] as const) {
        if (mode === 'kernel' && device !== 'cpu') continue;
        const ms = await timeGemm(device, M, D, D, wdt, mode);
        const gflops = (2 * M * D * D) / (ms * 1e6);
        const weightGBs = (D * D * (wdt === 'f32' ? 4 : 2)) / (ms * 1e6);
        const row: Row = {
          shape: `${label} ${M}x${D}·${D}x${D}ᵀ`, mode, M, N: D, K: D, weights: wdt, ms, gflops, weightGBs,
          ofReadBandwidth: weightGBs / readGBs, ofFmaPeak: gflops / fmaGflops,
          ofBf16DotPeak: device === 'cpu' && wdt === 'bf16' && M > 4 && dotGflops > 0 ? gflops / dotGflops : null,
        };
        rows.push(row);
        console.log(`${row.shape.padEnd(26)} ${mode.padEnd(6)} ${wdt.padEnd(5)} ${ms.toFixed(3).padStart(8)} ms  ${gflops.toFixed(1).padStart(7)} GFLOP/s  ${weightGBs.toFixed(1).padStart(6)} GB/s weights` +
          (device === 'cpu' ? `  (${(100 * row.ofReadBandwidth).toFixed(0)}% of read bw, ${(100 * row.ofFmaPeak).toFixed(0)}% of FMA peak` +
            (row.ofBf16DotPeak !== null ? `, ${(100 * row.ofBf16DotPeak).toFixed(0)}% of bf16 dot peak)` : ')') : ''));
      }
    }
  }

  // The naive loop: one thread, plain triple loop, f32 — what the blocked GEMM is measured against.
  const naive: { shape: string; gflops: number; speedupOfMambakit: number }[] = [];
  if (device === 'cpu') {
    for (const [M, D] of [[1, 2048], [512, 768]]) {
      const x = Tensor.from(rand(M * D), [M, D]);
      const w = Tensor.from(rand(D * D), [D, D]);
      const s = await addon.bench.naiveGemm(x.handle, w.handle);
      const gflops = (2 * M * D * D) / (s * 1e9);
      const ours = rows.find((r) => r.M === M && r.N === D && r.weights === 'f32' && r.mode === 'kernel');
      naive.push({ shape: `${M}x${D}·${D}x${D}ᵀ`, gflops, speedupOfMambakit: ours ? ours.gflops / gflops : NaN });
      console.log(`naive loop ${M}x${D}·${D}x${D}ᵀ f32: ${gflops.toFixed(2)} GFLOP/s` + (ours ? ` (mambakit ${(ours.gflops / gflops).toFixed(0)}× faster)` : ''));
    }
  }

  writeResults(out, {
    benchmark: 'gemm', device, machine: m, dtype: 'f32 activations, f32/bf16 weights, f32 accumulate (bf16 weights with machine.bf16Gemm = avx512bf16: activations rounded to bf16; VDPBF16PS above 4 rows)',
    reference: device === 'cpu'
      ? { streamReadGBs: readGBs, fmaPeakGflops: fmaGflops, bf16DotPeakGflops: dotGflops || null, note: 'ceilings measured in this run on all pool threads; decode rotates weight copies (>96 MiB) so reads come from DRAM' }
      : { note: 'see gpu reference fields' },
    goals: { decodeOfReadBandwidth: 0.7, prefillOfFmaPeak: 0.5 },
    rows, naive,
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
