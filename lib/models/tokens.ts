// Token batches as the models take them: number[][] (equal lengths) or a flat Int32Array with its shape.
import { MambakitError } from '../errors';
import { Device, Tensor } from '../tensor';

export type TokenBatch = readonly (readonly number[])[] | { data: Int32Array; shape: readonly [number, number] };

/** Validates ids against the vocabulary and returns an i32 [B, T] tensor on `device`. */
export function tokenTensor(tokens: TokenBatch, vocab: number, device: Device, what: string): Tensor {
  let data: Int32Array;
  let B: number, T: number;
  if (Array.isArray(tokens)) {
    const rows = tokens as readonly (readonly number[])[];
    B = rows.length;
    T = B > 0 ? rows[0].length : 0;
    if (rows.some((r) => !Array.isArray(r) || r.length !== T))
      throw new MambakitError('E_SHAPE', `${what}: token rows must all have the same length (row 0 has ${T})`);
    data = new Int32Array(B * T);
    rows.forEach((r, b) => r.forEach((id, t) => { data[b * T + t] = id; if (!Number.isInteger(id)) data[b * T + t] = -1; }));
  } else {
    const t = tokens as { data: Int32Array; shape: readonly [number, number] };
    [B, T] = t.shape;
    data = t.data;
    if (!(data instanceof Int32Array) || data.length !== B * T)
      throw new MambakitError('E_SHAPE', `${what}: tokens.data must be an Int32Array of shape [${B}, ${T}]`);
  }
  if (B < 1 || T < 1) throw new MambakitError('E_ARG', `${what}: empty prompt (batch ${B}, length ${T})`);
  for (let i = 0; i < data.length; ++i)
    if (!(data[i] >= 0 && data[i] < vocab))
      throw new MambakitError('E_ARG', `${what}: token id ${data[i]} at [${Math.floor(i / T)}, ${i % T}] is outside [0, ${vocab})`);
  return Tensor.from(data, [B, T], { device });
}

/** A modality given as its id or its name in `names` → the id; E_ARG naming it otherwise. */
export function modalityId(v: number | string, names: readonly string[], what: string, where = ''): number {
  const id = typeof v === 'string' ? names.indexOf(v) : v;
  if (!(Number.isInteger(id) && id >= 0 && id < names.length))
    throw new MambakitError('E_ARG', `${what}: modality ${JSON.stringify(v)}${where} is not one of 0..${names.length - 1} (${names.join(', ')})`);
  return id;
}

/** Modality ids (numbers, or names from config.modality_names) per token: [B][T], or a flat Int32Array with its shape. */
export type ModalityBatch = readonly (readonly (number | string)[])[] | { data: Int32Array; shape: readonly [number, number] };

/** Validates modality ids (or names) against `names` and the tokens' [B, T] shape → i32 [B, T] on `device`. */
export function modalityTensor(mods: ModalityBatch, names: readonly string[], shape: readonly number[], device: Device, what: string): Tensor {
  const [B, T] = shape;
  let data: Int32Array;
  if (Array.isArray(mods)) {
    const rows = mods as readonly (readonly (number | string)[])[];
    if (rows.length !== B || rows.some((r) => !Array.isArray(r) || r.length !== T))
      throw new MambakitError('E_SHAPE', `${what}: modalities must be [${B}][${T}] like the tokens, got ${rows.length} rows of lengths ${rows.map((r) => (Array.isArray(r) ? r.length : typeof r)).join(', ')}`);
    data = new Int32Array(B * T);
    rows.forEach((r, b) => r.forEach((v, t) => { data[b * T + t] = modalityId(v, names, what, ` at [${b}, ${t}]`); }));
  } else {
    const m = mods as { data: Int32Array; shape: readonly [number, number] };
    if (!(m.data instanceof Int32Array) || m.shape[0] !== B || m.shape[1] !== T || m.data.length !== B * T)
      throw new MambakitError('E_SHAPE', `${what}: modalities must be an Int32Array of shape [${B}, ${T}] like the tokens`);
    data = m.data;
    for (let i = 0; i < data.length; ++i)
      if (!(data[i] >= 0 && data[i] < names.length))
        throw new MambakitError('E_ARG', `${what}: modality ${data[i]} at [${Math.floor(i / T)}, ${i % T}] is outside [0, ${names.length})`);
  }
  return Tensor.from(data, [B, T], { device });
}
