// The machine a benchmark ran on, recorded beside its numbers.
import { execSync } from 'child_process';
import * as os from 'os';

import { info } from '../runtime';

export interface Machine {
  date: string;
  commit: string;
  cpu: string;
  cores: number;
  threads: number;
  cpuFeatures: string;
  /** the CPU kernel paths: 'avx2' or 'portable', and how bf16 GEMMs multiply */
  cpuKernels: string;
  bf16Gemm: string;
  memoryGiB: number;
  gpus: string[];
  node: string;
}

export function machine(): Machine {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch { /* not a git checkout */ }
  const i = info();
  return {
    date: new Date().toISOString(),
    commit,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    threads: i.threads,
    cpuFeatures: i.cpuFeatures,
    cpuKernels: i.cpuKernels,
    bf16Gemm: i.bf16Gemm,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    gpus: i.gpus.map((g) => `${g.name} (${(g.memoryBytes / 2 ** 30).toFixed(0)} GiB, cc ${g.computeCapability})`),
    node: process.version,
  };
}
