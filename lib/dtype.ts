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
