#!/usr/bin/env node
// The `mambakit` command.
import { CudaInfo, info } from '../runtime';
import { BENCH_USAGE, cmdBench } from './bench';
import { CLASSIFY_USAGE, cmdClassify } from './classify';
import { DIFFUSE_USAGE, cmdDiffuse } from './diffuse';
import { T2I_USAGE, UNDERSTAND_USAGE, cmdT2i, cmdUnderstand } from './images';
import { GENERATE_USAGE, cmdGenerate } from './generate';
import { SERVE_USAGE, cmdServe } from './serve';

function usage(): never {
  process.stderr.write(`usage: mambakit info [--json]\n${BENCH_USAGE}\n${GENERATE_USAGE}\n${SERVE_USAGE}\n${CLASSIFY_USAGE}\n${DIFFUSE_USAGE}\n${T2I_USAGE}\n${UNDERSTAND_USAGE}\n`);
  process.exit(2);
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

// What CUDA code the binary holds, and why it is not used when it is not.
function cudaLines(c: CudaInfo): string[] {
  if (!c.compiled) return [`CUDA: not compiled in (${c.reason})`];
  const real = c.archs.filter((a) => a.startsWith('sm_')), ptx = c.archs.filter((a) => a.startsWith('compute_'));
  const code = c.status === 'emulated' ? 'the SIMT emulator (test build)' : `${real.join(' ') || 'no real code'}${ptx.length ? ` + PTX ${ptx.join(' ')}` : ''}`;
  return [
    `CUDA kernels: ${code}; CUDA runtime ${c.runtime} (static)`,
    `CUDA in use: ${c.status === 'ok' || c.status === 'emulated' ? `yes${c.driver ? ` (driver CUDA ${c.driver})` : ''}` : `no: ${c.status}: ${c.reason}`}`,
  ];
}

function cmdInfo(json: boolean): void {
  const i = info();
  if (json) {
    process.stdout.write(JSON.stringify(i, null, 2) + '\n');
    return;
  }
  const lines = [
    `mambakit ${i.version}`,
    ...cudaLines(i.cuda),
    `GPUs: ${i.gpus.length === 0 ? 'none found' : ''}`,
    ...i.gpus.map((g) => `  cuda:${g.index} ${g.name}, ${gib(g.memoryBytes)}, compute ${g.computeCapability}, ${g.multiprocessors} SMs`),
    `CPU features: ${i.cpuFeatures} (kernels: ${i.cpuKernels}, bf16 GEMM: ${i.bf16Gemm})`,
    `CPU threads: ${i.threads}`,
    `ops: ${i.ops.join(' ')}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'info') cmdInfo(rest.includes('--json'));
else if (cmd === 'generate' || cmd === 'serve' || cmd === 'bench' || cmd === 'classify' || cmd === 'diffuse' || cmd === 't2i' || cmd === 'understand')
  ({ generate: cmdGenerate, serve: cmdServe, bench: cmdBench, classify: cmdClassify, diffuse: cmdDiffuse, t2i: cmdT2i, understand: cmdUnderstand }[cmd])(rest).catch((e: unknown) => {
    const err = e as { code?: string; message?: string };
    process.stderr.write(`mambakit ${cmd}: ${err.code ? err.code + ': ' : ''}${err.message ?? String(e)}\n`);
    process.exit(1);
  });
else usage();
