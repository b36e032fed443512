// Float64 references: the plain definitions, written for clarity, not speed.
import { info } from '../../lib';

export function gemmRef(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, M: number, N: number, K: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; ++m)
    for (let n = 0; n < N; ++n) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; ++k) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

export const siluRef = (x: number): number => x / (1 + Math.exp(-x));
export const softplusRef = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

// erf by its Maclaurin series (|x| < 3) or the continued-fraction tail: double-precision accurate.
// Math's functions are bound once: under jest every global lookup of `Math` crosses the vm context,
// which made the millions of GELUs of a whole-model reference ~25x slower.
const { abs, exp, sqrt, sign, PI } = Math;
export function erfRef(x: number): number {
  const ax = abs(x);
  if (ax < 3) {
    let term = ax, sum = ax;
    for (let n = 1; n < 200; ++n) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (abs(t) <= 1e-17 * abs(sum)) break;
    }
    return sign(x) * (2 / sqrt(PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; --n) f = n / 2 / (ax + f);
  const erfc = exp(-ax * ax) / sqrt(PI) / (ax + f);
  return sign(x) * (1 - erfc);
}
export const geluRef = (x: number): number => 0.5 * x * (1 + erfRef(x / Math.SQRT2));

export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; ++r) {
    let ss = 0;
    for (let i = 0; i < D; ++i) ss += x[r * D + i] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; ++i) y[r * D + i] = x[r * D + i] * inv * w[i];
  }
  return y;
}

export function layernormRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, rows: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; ++r) {
    let mean = 0;
    for (let i = 0; i < D; ++i) mean += x[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; ++i) v += (x[r * D + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; ++i) y[r * D + i] = (x[r * D + i] - mean) * inv * w[i] + (b ? b[i] : 0);
  }
  return y;
}

export function softmaxRef(x: ArrayLike<number>, rows: number, D: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; ++r) {
    let m = -Infinity;
    for (let i = 0; i < D; ++i) m = Math.max(m, x[r * D + i]);
    let s = 0;
    for (let i = 0; i < D; ++i) s += Math.exp(x[r * D + i] - m);
    for (let i = 0; i < D; ++i) y[r * D + i] = Math.exp(x[r * D + i] - m) / s;
  }
  return y;
}

/**
 * x as a GEMM with `wdt` weights on `device` multiplies it, for references: on a CPU with the
 * AVX512-BF16 path (runtime info().bf16Gemm) a bf16-weight GEMM rounds x to bf16; on CUDA a half-weight
 * GEMM rounds x to the weights' type on every path (tensor cores, and the GEMV the same way, so a
 * row's result does not depend on its batch).
 */
export function gemmInputs(x: ArrayLike<number>, wdt: 'f32' | 'f16' | 'bf16', device: string): ArrayLike<number> {
  if (device === 'cpu') return wdt === 'bf16' && info().bf16Gemm === 'avx512bf16' ? Float64Array.from(x, roundBf16) : x;
  if (wdt === 'f32') return x;
  return Float64Array.from(x, wdt === 'bf16' ? roundBf16 : roundF16);
}

// bf16 / f16 rounding (nearest even), to build references from the values the kernels really see.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function roundBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32[0];
}
export function roundF16(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const q = 2 ** (e - 10);
  const r = x / q;
  const fl = Math.floor(r);
  const diff = r - fl;
  const n = diff > 0.5 || (diff === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
  return n * q;
}
