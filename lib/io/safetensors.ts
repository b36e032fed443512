// Safetensors checkpoints: header parsing and validation, tensor loads through the native reader (one
// copy from disk, converting on load), and checkpoint directories (one file, or shards + index).
import * as fs from 'fs';
import * as path from 'path';

import { DType, dtypeId, isDType } from '../dtype';
import { MambakitError } from '../errors';
import { addon, call } from '../native';
import { Device, Tensor } from '../tensor';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

/**
 * Each safetensors dtype we read: the tensor dtype it maps to and its element size. I64 (PyTorch buffers such
 * as a quantizer's power_vals) has no tensor dtype: such entries are listed and read raw (Checkpoint.readRaw).
 */
export const ST_DTYPES: Readonly<Record<SafetensorsDType, { dtype: DType | null; size: number }>> = {
  F32: { dtype: 'f32', size: 4 },
  F16: { dtype: 'f16', size: 2 },
  BF16: { dtype: 'bf16', size: 2 },
  I32: { dtype: 'i32', size: 4 },
  I64: { dtype: null, size: 8 },
};

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in its file, and its length. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface SafetensorsFile {
  readonly file: string;
  readonly size: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
}

// The reference implementation's limit: a larger header is a corrupt or hostile file.
const MAX_HEADER_BYTES = 100_000_000;

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStDType = (s: string): s is SafetensorsDType => Object.prototype.hasOwnProperty.call(ST_DTYPES, s);
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

async function readExactly(fh: fs.promises.FileHandle, buf: Buffer, pos: number, file: string): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, pos + done);
    if (bytesRead === 0) throw fail(`${file}: ended at byte ${pos + done} while reading the header`);
    done += bytesRead;
  }
}

/** Reads and validates a safetensors header (no tensor data is read). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsFile> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw fail(`${file}: cannot open: ${(e as Error).message}`);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < 8) throw fail(`${file}: ${size} bytes is too short for a safetensors file (no 8-byte header length)`);
    const lenBuf = Buffer.alloc(8);
    await readExactly(fh, lenBuf, 0, file);
    const len = lenBuf.readBigUInt64LE(0);
    if (len > BigInt(size - 8)) throw fail(`${file}: header length ${len} is longer than the file (${size} bytes)`);
    if (len > BigInt(MAX_HEADER_BYTES)) throw fail(`${file}: header length ${len} exceeds the 100 MB limit`);
    const hdr = Buffer.alloc(Number(len));
    await readExactly(fh, hdr, 8, file);
    return parseHeader(file, hdr, size);
  } catch (e) {
    throw e instanceof MambakitError ? e : fail(`${file}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}

function parseHeader(file: string, hdr: Buffer, size: number): SafetensorsFile {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hdr));
  } catch (e) {
    throw fail(`${file}: header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isRecord(json)) throw fail(`${file}: header must be a JSON object`);
  const dataStart = 8 + hdr.length;
  const dataSize = size - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  const spans: { name: string; begin: number; end: number }[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(v)) throw fail(`${file}: __metadata__ must be an object of strings`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw fail(`${file}: __metadata__ value '${k}' must be a string`);
        metadata[k] = s;
      }
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    if (!isRecord(v)) throw fail(`${where}: entry must be an object`);
    const { dtype, shape, data_offsets: offs } = v;
    if (typeof dtype !== 'string') throw fail(`${where}: dtype must be a string`);
    if (!isStDType(dtype)) throw new MambakitError('E_DTYPE', `${where}: unsupported dtype '${dtype}' (expected F32, F16, BF16, I32 or I64)`);
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every(isUint))
      throw fail(`${where}: shape must be at most 8 integers >= 0, found ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isUint) || offs[0] > offs[1])
      throw fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(offs)}`);
    const [begin, end] = offs as number[];
    if (end > dataSize)
      throw fail(`${where}: data_offsets [${begin}, ${end}] run past the data section (${dataSize} bytes; file truncated?)`);
    const need = numel(shape) * ST_DTYPES[dtype].size;
    if (end - begin !== need)
      throw fail(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${need}`);
    tensors.set(name, { name, dtype, shape: Object.freeze(shape.slice()), offset: dataStart + begin, nbytes: need });
    if (end > begin) spans.push({ name, begin, end }); // empty tensors occupy no bytes
  }
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; ++i) {
    const [p, q] = [spans[i - 1], spans[i]];
    if (q.begin < p.end) throw fail(`${file}: tensor '${q.name}' [${q.begin}, ${q.end}] overlaps tensor '${p.name}' [${p.begin}, ${p.end}]`);
  }
  return { file, size, metadata, tensors };
}

export interface LoadOptions {
  /** The dtype to store (default: the file's); floats convert among f32/f16/bf16 while loading. */
  dtype?: DType;
  device?: Device;
}

/** Loads one tensor of a safetensors file: one read into the tensor's storage, converting on load. */
export async function loadTensor(file: string, entry: SafetensorsEntry, opts: LoadOptions = {}): Promise<Tensor> {
  const src = ST_DTYPES[entry.dtype].dtype;
  const where = `${file}: tensor '${entry.name}'`;
  if (src === null) throw new MambakitError('E_DTYPE', `${where}: ${entry.dtype} data has no tensor dtype (read it with Checkpoint.readRaw)`);
  const dst = opts.dtype ?? src;
  const float = (d: DType): boolean => d === 'f32' || d === 'f16' || d === 'bf16';
  if (!isDType(dst) || (dst !== src && !(float(src) && float(dst))))
    throw new MambakitError('E_DTYPE', `${where}: cannot load ${entry.dtype} data as ${String(dst)}`);
  try {
    const h = await call(() => addon.readTensor(file, entry.offset, dtypeId(src), dtypeId(dst), entry.shape.slice(), opts.device ?? 'cpu'));
    return Tensor.fromHandle(h);
  } catch (e) {
    const err = MambakitError.from(e);
    // The native message names the file; add the tensor.
    throw err instanceof MambakitError ? new MambakitError(err.code, `tensor '${entry.name}': ${err.message}`) : err;
  }
}

export interface CheckpointTensor extends SafetensorsEntry {
  /** The absolute path of the file holding it. */
  readonly file: string;
}

export type ProgressFn = (loadedBytes: number, totalBytes: number) => void;

/** A checkpoint directory's tensors, listed from the headers; loads read only the tensor asked for. */
export class Checkpoint {
  readonly totalBytes: number;
  readonly #tensors: ReadonlyMap<string, CheckpointTensor>;
  readonly #loaded = new Set<string>();
  #loadedBytes = 0;

  constructor(
    readonly dir: string,
    readonly files: readonly string[],
    tensors: readonly CheckpointTensor[],
    private readonly onProgress?: ProgressFn,
  ) {
    this.#tensors = new Map(tensors.map((t) => [t.name, t]));
    this.totalBytes = tensors.reduce((a, t) => a + t.nbytes, 0);
  }

  get names(): string[] {
    return [...this.#tensors.keys()];
  }

  list(): CheckpointTensor[] {
    return [...this.#tensors.values()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** A tensor's dtype, shape and file; E_FORMAT when the checkpoint lacks it. */
  get(name: string): CheckpointTensor {
    const t = this.#tensors.get(name);
    if (!t) throw fail(`${this.dir}: checkpoint has no tensor '${name}'`);
    return t;
  }

  /** A tensor's bytes as stored (little-endian), e.g. an I64 buffer. */
  async readRaw(name: string): Promise<Buffer> {
    const t = this.get(name);
    const fh = await fs.promises.open(t.file, 'r');
    try {
      const buf = Buffer.alloc(t.nbytes);
      const { bytesRead } = await fh.read(buf, 0, t.nbytes, t.offset);
      if (bytesRead !== t.nbytes) throw fail(`${t.file}: tensor '${name}' is cut short (${bytesRead} of ${t.nbytes} bytes)`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** Loads a tensor by name; each first load of a name advances the progress callback. */
  async load(name: string, opts: LoadOptions = {}): Promise<Tensor> {
    const t = this.get(name);
    const x = await loadTensor(t.file, t, opts);
    if (!this.#loaded.has(name)) {
      this.#loaded.add(name);
      this.#loadedBytes += t.nbytes;
      this.onProgress?.(this.#loadedBytes, this.totalBytes);
    }
    return x;
  }
}

export interface OpenOptions {
  onProgress?: ProgressFn;
}

/** A checkpoint directory's config.json, parsed (E_FORMAT naming the file when it is unreadable or not JSON). */
export async function readConfigJson(dir: string): Promise<{ cfgFile: string; json: unknown }> {
  const cfgFile = path.join(path.resolve(dir), 'config.json');
  try {
    return { cfgFile, json: JSON.parse(await fs.promises.readFile(cfgFile, 'utf8')) as unknown };
  } catch (e) {
    throw fail(`${cfgFile}: cannot read config: ${(e as Error).message}`);
  }
}

const isFile = (p: string): Promise<boolean> => fs.promises.stat(p).then((s) => s.isFile(), () => false);

/**
 * Opens a checkpoint directory holding `model.safetensors`, or `model.safetensors.index.json` and the
 * shards its weight_map names (read as Hugging Face writes them).
 */
export async function openCheckpoint(dir: string, opts: OpenOptions = {}): Promise<Checkpoint> {
  const root = path.resolve(dir);
  const single = path.join(root, 'model.safetensors');
  if (await isFile(single)) {
    const h = await readSafetensorsHeader(single);
    return new Checkpoint(root, [single], [...h.tensors.values()].map((e) => ({ ...e, file: single })), opts.onProgress);
  }
  const index = path.join(root, 'model.safetensors.index.json');
  if (!(await isFile(index))) throw fail(`${root}: neither model.safetensors nor model.safetensors.index.json is there`);
  let json: unknown;
  try {
    json = JSON.parse(await fs.promises.readFile(index, 'utf8'));
  } catch (e) {
    throw fail(`${index}: not valid JSON: ${(e as Error).message}`);
  }
  const map = isRecord(json) ? json.weight_map : undefined;
  if (!isRecord(map)) throw fail(`${index}: weight_map must be an object of tensor name -> shard file`);
  const shardOf = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard === '') throw fail(`${index}: weight_map entry for tensor '${name}' must be a file name`);
    // A lexical check: shards may be symlinks into a cache (as the Hugging Face hub lays them out).
    const file = path.resolve(root, shard);
    const rel = path.relative(root, file);
    if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel))
      throw fail(`${index}: shard '${shard}' of tensor '${name}' resolves outside ${root}`);
    shardOf.set(name, file);
  }
  const shards = [...new Set(shardOf.values())];
  for (const f of shards) {
    if (!(await isFile(f))) throw fail(`${index}: shard ${path.relative(root, f)} is missing (needed for tensor '${[...shardOf].find(([, s]) => s === f)?.[0]}')`);
  }
  const headers = new Map((await Promise.all(shards.map(readSafetensorsHeader))).map((h) => [h.file, h]));
  const tensors: CheckpointTensor[] = [];
  for (const [name, file] of shardOf) {
    const e = headers.get(file)?.tensors.get(name);
    if (!e) throw fail(`${index}: weight_map puts tensor '${name}' in ${path.relative(root, file)}, which lacks it`);
    tensors.push({ ...e, file });
  }
  return new Checkpoint(root, shards, tensors, opts.onProgress);
}

export { writeSafetensors, writeShardedCheckpoint } from './safetensors-write';
export type { TensorToWrite } from './safetensors-write';
