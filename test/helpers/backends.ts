// The devices every op test runs on: the CPU always, CUDA when a GPU is detected. With
// MAMBAKIT_REQUIRE_GPU=1 (npm run test:gpu) a missing GPU is a failure, not a skip.
import { cudaAvailable, gpus } from '../../lib';
import type { Device } from '../../lib';

export const hasGpu = cudaAvailable();
if (process.env.MAMBAKIT_REQUIRE_GPU === '1' && !hasGpu) throw new Error('MAMBAKIT_REQUIRE_GPU=1 but no CUDA GPU was detected');

export const DEVICES: Device[] = hasGpu ? ['cpu', 'cuda'] : ['cpu'];

/** The `cuda` device is the SIMT emulator (npm run test:emu): every CUDA thread a fiber, so slow. */
export const emulated = hasGpu && /emulator/i.test(gpus()[0].name);
