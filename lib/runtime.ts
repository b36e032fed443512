// Process-wide runtime facts and settings: memory, threads, devices.
import * as fs from 'fs';
import * as path from 'path';

import { NativeCuda, NativeGpu, NativeInfo, NativeStats, PKG_ROOT, addon, call } from './native';

export type MemoryStats = NativeStats;
export type GpuInfo = NativeGpu;
export type CudaInfo = NativeCuda;

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

/** info(): the package version and what the native addon has and uses (lib/native.ts NativeInfo). */
export interface RuntimeInfo extends NativeInfo {
  version: string;
}

export function info(): RuntimeInfo {
  const { version } = JSON.parse(fs.readFileSync(path.join(PKG_ROOT, 'package.json'), 'utf8')) as { version: string };
  return { version, ...addon.info() };
}
