// Process-wide runtime facts and settings: memory, threads, devices.
import * as fs from 'fs';
import * as path from 'path';

import { NativeGpu, NativeStats, PKG_ROOT, addon, call } from './native';

export type MemoryStats = NativeStats;
export type GpuInfo = NativeGpu;

/** Live tensors and bytes per device ('cpu', 'cuda:0', …); cachedBytes: freed blocks the caching allocator keeps for reuse (CUDA: all; host: blocks ≥ 256 KiB, up to MAMBAKIT_HOST_CACHE_MB, default 1024). */
export function memory(): Record<string, MemoryStats> {
  return addon.memory();
}

/** Returns the caching allocator's free blocks (CUDA and host) to the driver / the OS. */
export function emptyCache(): void {
  addon.emptyCache();
}

/** Sets the CPU thread pool size (default: MAMBAKIT_THREADS or the number of cores). */
export function setThreads(n: number): void {
  call(() => addon.setThreads(n));
}

export function threads(): number {
  return addon.info().threads;
}

/** GPUs found (empty without a driver or a CUDA build). */
export function gpus(): GpuInfo[] {
  return addon.info().gpus;
}

export function cudaAvailable(): boolean {
  return addon.info().gpus.length > 0;
}

/** Resolves once every op queued before it has run. */
export function synchronize(): Promise<void> {
  return call(() => addon.synchronize());
}

export interface RuntimeInfo {
  version: string;
  cudaCompiled: boolean;
  gpus: GpuInfo[];
  cpuFeatures: string;
  cpuKernels: 'avx2' | 'portable';
  /**
   * How bf16-weight GEMMs compute on the CPU: 'avx512bf16' rounds x to bf16 (at every row count) and above 4 rows
   * multiplies with VDPBF16PS (f32 accumulation, twice the f32 FMA rate; CPUs with AVX512-BF16, unless
   * MAMBAKIT_NO_AVX512BF16=1), 'f32' widens the weights and multiplies in f32.
   */
  bf16Gemm: 'avx512bf16' | 'f32';
  threads: number;
  ops: string[];
}

export function info(): RuntimeInfo {
  const { version } = JSON.parse(fs.readFileSync(path.join(PKG_ROOT, 'package.json'), 'utf8')) as { version: string };
  return { version, ...addon.info() };
}
