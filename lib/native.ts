// The only file that loads and types the raw addon (node-gyp-build finds prebuilds/ or build/).
import * as fs from 'fs';
import * as path from 'path';

import { MambakitError } from './errors';

/** A native tensor handle. Methods reject/throw Errors with `code`. */
export interface NativeTensor {
  readonly dtype: number;
  readonly shape: number[];
  readonly device: string;
  readonly nbytes: number;
  readonly disposed: boolean;
  read(asF32: boolean): Promise<ArrayBuffer>;
  to(device: string): Promise<NativeTensor>;
  dispose(): void;
}

export interface NativeStats {
  tensors: number;
  bytes: number;
  peakBytes: number;
  cachedBytes: number;
}

export interface NativeGpu {
  index: number;
  name: string;
  memoryBytes: number;
  computeCapability: string;
  multiprocessors: number;
}

/** Why CUDA is or is not used in this process (csrc/core/device.h Availability). */
export type CudaStatus = 'ok' | 'emulated' | 'not-compiled' | 'no-driver' | 'no-device' | 'driver-too-old' | 'error';

export interface NativeCuda {
  /** The binary holds CUDA kernels (built with nvcc, or the emulator's test build). */
  compiled: boolean;
  status: CudaStatus;
  /** One sentence for people when status is not 'ok' ('' otherwise). */
  reason: string;
  /** Code compiled in, nvcc's names: real code 'sm_80', …, PTX 'compute_90' (JIT-compiled for newer GPUs). */
  archs: string[];
  /** CUDA runtime version linked in, '13.0' (statically: no libcudart needed); '' without CUDA. */
  runtime: string;
  /** The installed driver's CUDA version, '' when there is no driver. */
  driver: string;
}

export interface NativeInfo {
  cuda: NativeCuda;
  gpus: NativeGpu[];
  cpuFeatures: string;
  /** The CPU kernel path in use: 'avx2' or 'portable' (no AVX2/FMA/F16C, or MAMBAKIT_FORCE_SCALAR=1). */
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

/** A config value a model family reads (csrc/plan/config.h): numbers, strings, booleans and lists of them. */
export type NativeConfig = Record<string, number | string | boolean | readonly number[] | readonly string[] | undefined>;

/** The recurrent state slots of a native model (csrc/plan/plan.h PlanState). */
export interface NativeState {
  readonly slots: number;
  zeroSlot(slot: number): Promise<void>;
  dispose(): void;
}

/** How a representation editor combines u = W·h + b and v = R·h (csrc/core/reft.h). */
export type ReftFormula = 'pyreft' | 'mrt';
/** The editor's activation (act(0) = 0 for each; 'gelu' is the exact erf form). */
export type ReftActivation = 'identity' | 'relu' | 'gelu' | 'silu' | 'tanh';

/**
 * A residual-stream edit at the edit point after block `after` (csrc/plan/edit.h), at stream rows `rows` (i32 [n], distinct):
 * 'add': stream[row] += values (f32 [C] or [n, C]);
 * 'reft': stream[row] += R_eᵀ d with e = editor[i] (i32 [n]), h = stream[row], u = W_e h + b_e, v = R_e h and
 * d = act(u) − v ('pyreft') or act(u − v) ('mrt'); R, W [E, r, C] (f32 or bf16, one dtype), b f32 [E, r].
 */
export type NativeEdit =
  | { op: 'add'; after: number; rows: NativeTensor; values: NativeTensor }
  | {
    op: 'reft'; after: number; rows: NativeTensor; editor: NativeTensor; R: NativeTensor; W: NativeTensor; b: NativeTensor;
    formula: ReftFormula; activation: ReftActivation;
  };

/** One call of a native plan. mode: 'forward' (all positions), 'prefill' (last position), 'step' (decode, one token). */
export interface NativeCall {
  input: NativeTensor;
  modality?: NativeTensor | null;
  state?: NativeState | null;
  slots?: NativeTensor | null;
  mode: 'forward' | 'prefill' | 'step';
  edits?: NativeEdit[];
  /** Attention models: the tokens sit at positions [offset, offset + T) of the state's K/V cache. */
  offset?: number;
  /** Attention models: keys [0, keys) of the cache are attended (default offset + T). */
  keys?: number;
  /** Attention models: f32 [B, keys] added to every score (−Infinity drops a key: padding). */
  keyBias?: NativeTensor | null;
  /** mode 'forward': logits only for positions [logitsFrom, logitsFrom + logitsCount) of each row. */
  logitsFrom?: number;
  logitsCount?: number;
}

/** A native model plan (one per loaded model): embed → blocks → head, built by csrc/models/ from a config and weights. */
export interface NativeModel {
  forward(call: NativeCall): Promise<NativeTensor>;
  /** A zeroed state for `slots` sequences; attention models need `context` (positions per sequence). */
  newState(slots: number, context?: number): NativeState;
  /** The plan's monitoring counters (MoE: tokens per expert, i32 [moe blocks, experts]), or null. */
  counters(): NativeTensor | null;
  /** The block kinds in order (e.g. 'mamba', 'moe', 'stem', 'gated_cnn', 'downsample'). */
  blocks(): string[];
  /** Drops the plan (weights references, workspace arenas, captured graphs); later calls reject with E_ARG. */
  dispose(): void;
}

interface Addon {
  tensorFrom(view: ArrayBufferView, srcDtype: number, dstDtype: number, shape: number[], device: string): NativeTensor;
  readTensor(path: string, offset: number, srcDtype: number, dstDtype: number, shape: number[], device: string): Promise<NativeTensor>;
  runOp(name: string, inputs: (NativeTensor | null)[], attrs: Record<string, number>): Promise<NativeTensor[]>;
  memory(): Record<string, NativeStats>;
  emptyCache(): void;
  info(): NativeInfo;
  setThreads(n: number): void;
  synchronize(): Promise<void>;
  /** Builds a plan of a registered family ('mamba', 'mambaout', 'gated_cnn_block') from its config and weights by name. */
  createModel(family: string, config: NativeConfig, weights: Record<string, NativeTensor>, device: string): NativeModel;
  modelFamilies(): string[];
  /** Machine ceilings for the benchmark scripts (not part of the public API). */
  bench: {
    streamRead(mb: number): Promise<number>;
    fmaPeak(): Promise<number>;
    /** VDPBF16PS peak, GFLOP/s; 0 where the bf16 GEMM does not use it */
    bf16DotPeak(): Promise<number>;
    naiveGemm(x: NativeTensor, w: NativeTensor): Promise<number>;
    gemmLoop(x: NativeTensor, ws: NativeTensor[], reps: number): Promise<number>;
  };
}

// The package root: the nearest folder above this file with mambakit's package.json (this file runs
// from lib/ under ts-jest and from dist/lib/ once compiled).
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'mambakit') return dir;
    if (path.dirname(dir) === dir) throw new Error(`mambakit: package root not found above ${__dirname}`);
  }
}
export const PKG_ROOT = packageRoot();

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;
// MAMBAKIT_ADDON=path/to/mambakit.node loads that build instead (the emulator build for `npm run test:emu`).
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const addon = (process.env.MAMBAKIT_ADDON ? require(path.resolve(process.env.MAMBAKIT_ADDON)) : load(PKG_ROOT)) as Addon;

/** Calls the addon, turning its errors (sync or async) into MambakitError. */
export function call<T>(fn: () => T): T {
  let r: T;
  try {
    r = fn();
  } catch (e) {
    throw MambakitError.from(e);
  }
  // A promise made by the addon belongs to the main realm (not `instanceof Promise` under jest's vm).
  if (isThenable(r)) return Promise.resolve(r).catch((e: unknown) => { throw MambakitError.from(e); }) as T;
  return r;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
