// The element types, in the same order as csrc/core/dtype.h (the ids cross the native boundary).
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u8';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u8'];

export const DTYPE_SIZE: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export function dtypeId(d: DType): number {
  return DTYPES.indexOf(d);
}

export function dtypeFromId(id: number): DType {
  const d = DTYPES[id];
  if (d === undefined) throw new Error(`unknown dtype id ${id}`);
  return d;
}

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** What `Tensor.data()` returns: f16/bf16 come back widened to Float32Array unless `raw` is asked. */
export type TensorData = Float32Array | Int32Array | Uint16Array | Uint8Array;

/** dtype of a model's GEMM weights and embedding (norms, conv, A, D and biases stay f32). */
export type WeightDType = 'f32' | 'f16' | 'bf16';

export const WEIGHT_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'bf16'];

export function isWeightDType(s: unknown): s is WeightDType {
  return typeof s === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(s);
}

// Scratch for the float bit conversions below.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bf16 bits of x, rounded to nearest even (NaN stays a quiet NaN). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40; // NaN stays a (quiet) NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The IEEE half bits of x, rounded to nearest even (subnormals, overflow to inf, NaN kept). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  // Keep `shift` bits fewer: 13 for normals, more for half subnormals (the implicit bit included).
  const m = e > 0 ? mant : mant | 0x800000;
  const shift = e > 0 ? 13 : 14 - e;
  if (shift > 24) return sign;
  let q = (e > 0 ? e << 10 : 0) | (m >>> shift);
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) q += 1; // a carry rolls into the exponent, up to inf
  return sign | q;
}
