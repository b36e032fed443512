// A small safetensors writer (tests build random checkpoints with it) and a Hugging Face style
// sharded writer (model-0000k-of-0000n.safetensors + model.safetensors.index.json).
import * as fs from 'fs';
import * as path from 'path';

import { f32ToBf16Bits, f32ToF16Bits } from '../dtype';
import { MambakitError } from '../errors';
import type { SafetensorsDType } from './safetensors';

export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: number[];
  /** F32: Float32Array; I32: Int32Array; I64: BigInt64Array; F16/BF16: Float32Array (rounded to nearest even) or raw Uint16Array bits. */
  data: Float32Array | Uint16Array | Int32Array | BigInt64Array;
}

/** @deprecated moved to lib/dtype.ts; re-exported here for old imports. */
export { f32ToBf16Bits, f32ToF16Bits } from '../dtype';

const SIZE: Readonly<Record<SafetensorsDType, number>> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

// Null-prototype records, so a tensor named "__proto__" is an ordinary key.
const dict = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

function encode(name: string, t: TensorToWrite): Uint8Array {
  const where = `writeSafetensors: tensor '${name}'`;
  if (!Object.prototype.hasOwnProperty.call(SIZE, t.dtype)) throw new MambakitError('E_DTYPE', `${where}: unsupported dtype '${String(t.dtype)}'`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new MambakitError('E_SHAPE', `${where}: shape must be integers >= 0`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new MambakitError('E_SHAPE', `${where}: data has ${t.data.length} elements, shape [${t.shape.join(', ')}] needs ${n}`);
  let out: Float32Array | Uint16Array | Int32Array | BigInt64Array;
  if (t.dtype === 'F32' && t.data instanceof Float32Array) out = t.data;
  else if (t.dtype === 'I64' && t.data instanceof BigInt64Array) out = t.data;
  else if (t.dtype === 'I32' && t.data instanceof Int32Array) out = t.data;
  else if ((t.dtype === 'F16' || t.dtype === 'BF16') && t.data instanceof Uint16Array) out = t.data;
  else if ((t.dtype === 'F16' || t.dtype === 'BF16') && t.data instanceof Float32Array) out = Uint16Array.from(t.data, t.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits);
  else throw new MambakitError('E_DTYPE', `${where}: ${t.data.constructor.name} data cannot be written as ${t.dtype}`);
  // Safetensors is little-endian, as are the hosts we build for (x86-64, arm64).
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

async function writeAll(fh: fs.promises.FileHandle, buf: Uint8Array): Promise<void> {
  for (let done = 0; done < buf.byteLength; ) done += (await fh.write(buf, done, buf.byteLength - done)).bytesWritten;
}

/** Writes a safetensors file: tensors in the given order, data 8-byte aligned. Returns the data bytes. */
export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<number> {
  const header = dict<unknown>();
  if (metadata) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new MambakitError('E_ARG', 'writeSafetensors: "__metadata__" is not a tensor name');
    const b = encode(name, t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.byteLength] };
    parts.push(b);
    off += b.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // pad with spaces, as the reference writer does
  const hb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const fh = await fs.promises.open(file, 'w');
  try {
    for (const b of [len, hb, ...parts]) await writeAll(fh, b);
  } finally {
    await fh.close();
  }
  return off;
}

/**
 * Splits the tensors, in order, into shards of at most `maxShardBytes` (a larger tensor gets a shard of
 * its own) and writes them with the index. Returns the shard file names.
 */
export async function writeShardedCheckpoint(dir: string, tensors: Record<string, TensorToWrite>, maxShardBytes: number): Promise<string[]> {
  if (!(maxShardBytes > 0)) throw new MambakitError('E_ARG', 'writeShardedCheckpoint: maxShardBytes must be > 0');
  const groups: Record<string, TensorToWrite>[] = [];
  let cur = dict<TensorToWrite>();
  let curBytes = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (SIZE[t.dtype] ?? 4);
    if (Object.keys(cur).length > 0 && curBytes + bytes > maxShardBytes) {
      groups.push(cur);
      [cur, curBytes] = [dict<TensorToWrite>(), 0];
    }
    cur[name] = t;
    curBytes += bytes;
  }
  groups.push(cur);
  const pad = (i: number): string => String(i).padStart(5, '0');
  const names = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap = dict<string>();
  let total = 0;
  for (let i = 0; i < groups.length; ++i) {
    total += await writeSafetensors(path.join(dir, names[i]), groups[i]);
    for (const name of Object.keys(groups[i])) weightMap[name] = names[i];
  }
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  await fs.promises.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
  return names;
}
