// A small GGUF v3 writer, and the conversion of a random HF-layout Mamba-1 checkpoint (mamba-ckpt.ts)
// into the layout llama.cpp's `mamba` architecture loads — so llama.cpp can serve as an independent
// reference (test/models/llama-cpp.test.ts, scripts/bench-mamba.ts).
//
// GGUF v3 (ggml/include/gguf.h): "GGUF", u32 version 3, u64 tensor count, u64 KV count; each KV is a
// string key (u64 length + bytes), a u32 value type and the value (arrays: u32 element type, u64 count,
// elements); each tensor info is its name, u32 n_dims, u64 dims (innermost first: ggml's ne[0] is the
// contiguous axis, so a row-major [rows, cols] matrix is written as dims [cols, rows]), u32 ggml type
// and a u64 offset into the data blob; then padding to `general.alignment` (32) and the data, each
// tensor starting on an aligned offset.
//
// llama.cpp's Mamba-1 layout (src/models/mamba.cpp, src/llama-arch.cpp, conversion/mamba.py):
//   token_embd.weight            {D, V}          HF backbone.embeddings.weight [V, D]
//   output_norm.weight           {D}             HF backbone.norm_f.weight
//   output.weight                {D, V}          HF lm_head.weight (omitted when tied: llama.cpp reuses token_embd)
//   blk.i.attn_norm.weight       {D}             HF layers.i.norm.weight
//   blk.i.ssm_in.weight          {D, 2E}         HF mixer.in_proj.weight [2E, D]
//   blk.i.ssm_conv1d.weight      {K, E}          HF mixer.conv1d.weight [E, 1, K] squeezed
//   blk.i.ssm_conv1d.bias        {E}             required by llama.cpp: zeros when the checkpoint has none
//   blk.i.ssm_x.weight           {E, R + 2N}     HF mixer.x_proj.weight [R + 2N, E]
//   blk.i.ssm_dt.weight          {R, E}          HF mixer.dt_proj.weight [E, R]
//   blk.i.ssm_dt.bias            {E}
//   blk.i.ssm_a                  {N, E}          −exp(HF mixer.A_log [E, N])  (no ".weight" suffix)
//   blk.i.ssm_d                  {E}             HF mixer.D                   (no ".weight" suffix)
//   blk.i.ssm_out.weight         {E, D}          HF mixer.out_proj.weight [D, E]
// llama.cpp has no in_proj/out_proj biases for Mamba-1 and only supports expand = 2 (2·D = E).
// The BF16 variant stores the matrices (token_embd, output, ssm_in, ssm_x, ssm_dt, ssm_out) as BF16 and
// keeps the rest F32, as convert_hf_to_gguf.py does (ssm_conv must be F32 on the CPU; 1-D tensors and
// ssm_a are always F32) — the same split as mambakit's dtype 'bf16'.
import * as fs from 'fs';

import { f32ToBf16Bits } from '../../lib/dtype';
import type { MambaShape, Weights } from './mamba-ckpt';

export const GGUF_ALIGNMENT = 32;

// gguf_type
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
type Scalar = 'u32' | 'i32' | 'f32' | 'u64' | 'bool' | 'string';
const SCALAR_TYPE: Record<Scalar, number> = { u32: T.U32, i32: T.I32, f32: T.F32, u64: T.U64, bool: T.BOOL, string: T.STRING };

export type GgufValue =
  | { type: Scalar; value: number | boolean | string }
  | { type: 'array'; of: Scalar; values: readonly (number | boolean | string)[] | Float32Array | Int32Array };

/** ggml_type ids of the tensor types written here. */
export const GGML_TYPE = { F32: 0, F16: 1, BF16: 30 } as const;
export type GgmlTensorType = keyof typeof GGML_TYPE;

export interface GgufTensor {
  name: string;
  /** Dimensions innermost first (ggml ne[0], ne[1], …). */
  dims: number[];
  type: 'F32' | 'BF16';
  data: Float32Array;
}

class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  private n = 0;
  private ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.n); this.n += 1; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.n); this.n += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.n); this.n += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.n); this.n += 4; }
  u64(v: number): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.n); this.n += 8; }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.n);
    this.n += b.length;
  }
  pad(alignment: number): void {
    const k = (alignment - (this.n % alignment)) % alignment;
    this.ensure(k);
    this.buf.fill(0, this.n, this.n + k);
    this.n += k;
  }
  get length(): number { return this.n; }
  bytes(): Buffer { return this.buf.subarray(0, this.n); }
}

function writeScalar(w: ByteWriter, type: Scalar, v: number | boolean | string, key: string): void {
  const bad = (): Error => new Error(`gguf: key '${key}': ${JSON.stringify(v)} is not a valid ${type}`);
  switch (type) {
    case 'string': if (typeof v !== 'string') throw bad(); w.str(v); break;
    case 'bool': if (typeof v !== 'boolean') throw bad(); w.u8(v ? 1 : 0); break;
    case 'f32': if (typeof v !== 'number') throw bad(); w.f32(v); break;
    case 'u32': if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(); w.u32(v); break;
    case 'i32': if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(); w.i32(v); break;
    case 'u64': if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(); w.u64(v); break;
  }
}

const tensorBytes = (t: GgufTensor): number => t.data.length * (t.type === 'F32' ? 4 : 2);
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Writes a GGUF v3 file (streaming the tensor data); returns its size in bytes. */
export function writeGguf(file: string, kv: Record<string, GgufValue>, tensors: GgufTensor[]): number {
  const h = new ByteWriter();
  h.u8(0x47); h.u8(0x47); h.u8(0x55); h.u8(0x46); // "GGUF"
  h.u32(3);
  h.u64(tensors.length);
  const entries = Object.entries({ 'general.alignment': { type: 'u32', value: GGUF_ALIGNMENT } as GgufValue, ...kv });
  h.u64(entries.length);
  for (const [key, v] of entries) {
    h.str(key);
    if (v.type === 'array') {
      h.u32(T.ARRAY);
      h.u32(SCALAR_TYPE[v.of]);
      h.u64(v.values.length);
      for (const x of v.values) writeScalar(h, v.of, x, key);
    } else {
      h.u32(SCALAR_TYPE[v.type]);
      writeScalar(h, v.type, v.value, key);
    }
  }
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`gguf: duplicate tensor '${t.name}'`);
    names.add(t.name);
    if (Buffer.byteLength(t.name) >= 64) throw new Error(`gguf: tensor name '${t.name}' is too long for ggml (63 bytes)`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`gguf: tensor '${t.name}' dims [${t.dims}] need ${n} values, data has ${t.data.length}`);
    h.str(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(GGML_TYPE[t.type]);
    h.u64(offset);
    offset = alignUp(offset + tensorBytes(t), GGUF_ALIGNMENT);
  }
  h.pad(GGUF_ALIGNMENT);

  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, h.bytes());
    let pos = h.length;
    const zeros = Buffer.alloc(GGUF_ALIGNMENT);
    const CHUNK = 1 << 20; // elements per conversion chunk
    const bf = Buffer.alloc(CHUNK * 2);
    for (const t of tensors) {
      if (t.type === 'F32') {
        // Little-endian host: the Float32Array's bytes are the file's bytes.
        const all = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        for (let i = 0; i < all.length; i += CHUNK * 4) pos += fs.writeSync(fd, all.subarray(i, Math.min(all.length, i + CHUNK * 4)));
      } else {
        for (let i = 0; i < t.data.length; i += CHUNK) {
          const m = Math.min(CHUNK, t.data.length - i);
          for (let j = 0; j < m; ++j) bf.writeUInt16LE(f32ToBf16Bits(t.data[i + j]), 2 * j);
          pos += fs.writeSync(fd, bf.subarray(0, 2 * m));
        }
      }
      const k = (GGUF_ALIGNMENT - (pos % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
      if (k) pos += fs.writeSync(fd, zeros.subarray(0, k));
    }
    return pos;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The simplest vocabulary llama.cpp accepts for a model of V tokens: a SentencePiece ("llama") list with
 * <unk>, <s>, </s>, then the 256 byte tokens while they fit, then placeholders. The tokenizer is never
 * used (token ids go in directly); it only has to load.
 */
export function placeholderVocab(V: number): Record<string, GgufValue> {
  if (V < 3) throw new Error(`gguf: a vocabulary needs at least 3 tokens, got ${V}`);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < V; ++i) {
    if (i === 0) { tokens.push('<unk>'); types.push(2); }                        // UNKNOWN
    else if (i < 3) { tokens.push(i === 1 ? '<s>' : '</s>'); types.push(3); }    // CONTROL
    else if (i < 259) { tokens.push(`<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); } // BYTE
    else { tokens.push(`▁t${i}`); types.push(1); }                               // NORMAL
  }
  return {
    'tokenizer.ggml.model': { type: 'string', value: 'llama' },
    'tokenizer.ggml.tokens': { type: 'array', of: 'string', values: tokens },
    'tokenizer.ggml.scores': { type: 'array', of: 'f32', values: new Float32Array(V) },
    'tokenizer.ggml.token_type': { type: 'array', of: 'i32', values: Int32Array.from(types) },
    'tokenizer.ggml.unknown_token_id': { type: 'u32', value: 0 },
    'tokenizer.ggml.bos_token_id': { type: 'u32', value: 1 },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
    'tokenizer.ggml.add_eos_token': { type: 'bool', value: false },
  };
}

export interface MambaGgufOptions {
  /** F32 everywhere, or BF16 matrices (the rest F32). Default F32. */
  dtype?: 'F32' | 'BF16';
  /** The checkpoint's layer_norm_epsilon (mambaConfigJson writes 1e-5). */
  eps?: number;
  name?: string;
}

/** The metadata and tensors llama.cpp's Mamba-1 loader expects, from HF-layout weights. */
export function mambaGgufContents(s: MambaShape, w: Weights, opts: MambaGgufOptions = {}): { kv: Record<string, GgufValue>; tensors: GgufTensor[] } {
  const { D, L, N, K } = s;
  const E = s.expand * D;
  const R = s.R === undefined || s.R === 'auto' ? Math.ceil(D / 16) : s.R;
  const V = w['backbone.embeddings.weight'].length / D;
  if (E !== 2 * D) throw new Error(`gguf: llama.cpp's Mamba supports expand 2 only (got expand ${s.expand})`);
  if (s.useBias) throw new Error('gguf: llama.cpp\'s Mamba-1 has no in_proj/out_proj biases (use_bias must be false)');
  const mat: 'F32' | 'BF16' = opts.dtype ?? 'F32';
  const get = (name: string, n: number): Float32Array => {
    const t = w[name];
    if (!t) throw new Error(`gguf: checkpoint has no tensor '${name}'`);
    if (t.length !== n) throw new Error(`gguf: '${name}' has ${t.length} values, expected ${n}`);
    return t;
  };
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [D, V], type: mat, data: get('backbone.embeddings.weight', V * D) },
    { name: 'output_norm.weight', dims: [D], type: 'F32', data: get('backbone.norm_f.weight', D) },
  ];
  if (w['lm_head.weight']) tensors.push({ name: 'output.weight', dims: [D, V], type: mat, data: get('lm_head.weight', V * D) });
  for (let i = 0; i < L; ++i) {
    const p = `backbone.layers.${i}.`, b = `blk.${i}.`;
    const aLog = get(`${p}mixer.A_log`, E * N);
    tensors.push(
      { name: `${b}attn_norm.weight`, dims: [D], type: 'F32', data: get(`${p}norm.weight`, D) },
      { name: `${b}ssm_in.weight`, dims: [D, 2 * E], type: mat, data: get(`${p}mixer.in_proj.weight`, 2 * E * D) },
      { name: `${b}ssm_conv1d.weight`, dims: [K, E], type: 'F32', data: get(`${p}mixer.conv1d.weight`, E * K) },
      { name: `${b}ssm_conv1d.bias`, dims: [E], type: 'F32', data: w[`${p}mixer.conv1d.bias`] ? get(`${p}mixer.conv1d.bias`, E) : new Float32Array(E) },
      { name: `${b}ssm_x.weight`, dims: [E, R + 2 * N], type: mat, data: get(`${p}mixer.x_proj.weight`, (R + 2 * N) * E) },
      { name: `${b}ssm_dt.weight`, dims: [R, E], type: mat, data: get(`${p}mixer.dt_proj.weight`, E * R) },
      { name: `${b}ssm_dt.bias`, dims: [E], type: 'F32', data: get(`${p}mixer.dt_proj.bias`, E) },
      { name: `${b}ssm_a`, dims: [N, E], type: 'F32', data: aLog.map((a) => -Math.exp(a)) },
      { name: `${b}ssm_d`, dims: [E], type: 'F32', data: get(`${p}mixer.D`, E) },
      { name: `${b}ssm_out.weight`, dims: [E, D], type: mat, data: get(`${p}mixer.out_proj.weight`, D * E) },
    );
  }
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const kv: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: 'mamba' },
    'general.name': { type: 'string', value: opts.name ?? `mambakit-random-D${D}-L${L}` },
    'general.file_type': u32(mat === 'F32' ? 0 : 32), // LLAMA_FTYPE_ALL_F32 / LLAMA_FTYPE_MOSTLY_BF16
    'mamba.vocab_size': u32(V),
    'mamba.context_length': u32(1 << 20), // no positional limit; what convert_hf_to_gguf.py writes
    'mamba.embedding_length': u32(D),
    'mamba.block_count': u32(L),
    'mamba.feed_forward_length': u32(0),
    'mamba.attention.head_count': u32(0),
    'mamba.ssm.conv_kernel': u32(K),
    'mamba.ssm.inner_size': u32(E),
    'mamba.ssm.state_size': u32(N),
    'mamba.ssm.time_step_rank': u32(R),
    'mamba.ssm.dt_b_c_rms': { type: 'bool', value: false },
    'mamba.attention.layer_norm_rms_epsilon': { type: 'f32', value: opts.eps ?? 1e-5 },
    ...placeholderVocab(V),
  };
  return { kv, tensors };
}

/** Converts HF-layout Mamba weights to a GGUF file llama.cpp loads as arch `mamba`; returns its size. */
export function writeMambaGguf(file: string, s: MambaShape, w: Weights, opts: MambaGgufOptions = {}): number {
  const { kv, tensors } = mambaGgufContents(s, w, opts);
  return writeGguf(file, kv, tensors);
}
