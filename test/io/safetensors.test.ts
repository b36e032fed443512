// Safetensors: write -> read round trips (every dtype and conversion, single and sharded checkpoints)
// and every refusal, each a coded error naming the file and the tensor.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambakitError, Tensor } from '../../lib';
import { loadTensor, openCheckpoint, readSafetensorsHeader, writeSafetensors, writeShardedCheckpoint } from '../../lib/io/safetensors';
import type { TensorToWrite } from '../../lib/io/safetensors';
import { addon } from '../../lib/native';
import { DEVICES } from '../helpers/backends';
import { expectEqual } from '../helpers/compare';
import { randInt, uniform } from '../helpers/random';
import { roundBf16, roundF16 } from '../helpers/ref';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-io-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: (RegExp | string)[]): Promise<void> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(MambakitError);
  expect((e as MambakitError).code).toBe(code);
  for (const pat of patterns) expect((e as MambakitError).message).toMatch(pat);
}

// A file with a hand-made header (a string is written as is) followed by `dataBytes` zero bytes.
function rawFile(name: string, header: unknown, dataBytes: number, declaredLen?: number): string {
  const hb = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLen ?? hb.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([len, hb, Buffer.alloc(dataBytes)]));
  return file;
}

describe.each(DEVICES)('safetensors round trips on %s', (device) => {
  test('every dtype loads as stored, and floats convert on load', async () => {
    const x = uniform(3 * 5);
    const ids = randInt(7, 1000);
    const raw = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]); // f16 bits: 1, -2, 65504, 2^-24
    const tensors: Record<string, TensorToWrite> = {
      'a.f32': { dtype: 'F32', shape: [3, 5], data: x },
      'a.f16': { dtype: 'F16', shape: [15], data: x },
      'a.bf16': { dtype: 'BF16', shape: [5, 3], data: x },
      'a.i32': { dtype: 'I32', shape: [7], data: ids },
      'a.raw16': { dtype: 'F16', shape: [2, 2], data: raw },
      'a.empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      'a.scalar': { dtype: 'F32', shape: [], data: Float32Array.of(2.5) },
    };
    const file = path.join(dir, 'rt.safetensors');
    await writeSafetensors(file, tensors, { format: 'pt' });
    const h = await readSafetensorsHeader(file);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(fs.readFileSync(file).readBigUInt64LE(0) % 8n).toBe(0n); // data section starts 8-aligned
    for (const [name, t] of Object.entries(tensors)) {
      expect(h.tensors.get(name)).toMatchObject({ name, dtype: t.dtype, shape: t.shape });
    }
    const load = async (name: string, dtype?: 'f32' | 'f16' | 'bf16'): Promise<Tensor> => {
      const t = await loadTensor(file, h.tensors.get(name)!, { dtype, device });
      expect(t.device).toBe(device === 'cuda' ? 'cuda:0' : device); // 'cuda' is named with its index
      return t;
    };
    const f16 = Float32Array.from(x, roundF16);
    const bf16 = Float32Array.from(x, roundBf16);
    expectEqual(await (await load('a.f32')).data(), x, 'f32');
    expectEqual(await (await load('a.f16')).data(), f16, 'f16');
    expectEqual(await (await load('a.bf16')).data(), bf16, 'bf16');
    expectEqual(await (await load('a.i32')).data(), ids, 'i32');
    expectEqual(await (await load('a.raw16')).data({ raw: true }), raw, 'raw f16 bits');
    expect((await load('a.empty')).shape).toEqual([0, 4]);
    expectEqual(await (await load('a.scalar')).data(), [2.5], 'scalar');
    // conversions while loading: f32 -> halves, halves -> f32, half -> other half
    expectEqual(await (await load('a.f32', 'bf16')).data(), bf16, 'f32 file -> bf16');
    expectEqual(await (await load('a.f32', 'f16')).data(), f16, 'f32 file -> f16');
    expectEqual(await (await load('a.f16', 'f32')).data(), f16, 'f16 file -> f32');
    expectEqual(await (await load('a.f16', 'bf16')).data(), Float32Array.from(f16, roundBf16), 'f16 file -> bf16');
    expectEqual(await (await load('a.bf16', 'f16')).data(), Float32Array.from(bf16, roundF16), 'bf16 file -> f16');
    const t = await load('a.bf16', 'f32');
    expect([t.dtype, t.shape]).toEqual(['f32', [5, 3]]);
    await rejectsWith(loadTensor(file, h.tensors.get('a.i32')!, { dtype: 'f32', device }), 'E_DTYPE', file, "'a.i32'");
  });

  test('the writer rounds f32 to f16/bf16 exactly as the native conversion does', async () => {
    const edge = Float32Array.from([0, -0, 1, 65504, 65519, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1.5 * 2 ** -24,
      2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-40, Infinity, -Infinity, NaN, 3.3895314e38, ...uniform(64, -70000, 70000), ...uniform(64, -1e-4, 1e-4)]);
    const n = edge.length;
    const file = path.join(dir, 'edge.safetensors');
    await writeSafetensors(file, { h: { dtype: 'F16', shape: [n], data: edge }, b: { dtype: 'BF16', shape: [n], data: edge } });
    const hdr = await readSafetensorsHeader(file);
    for (const [name, dtype] of [['h', 'f16'], ['b', 'bf16']] as const) {
      const mine = await (await loadTensor(file, hdr.tensors.get(name)!, { device })).data({ raw: true });
      const native = await Tensor.from(edge, [n], { dtype, device }).data({ raw: true });
      expectEqual(mine, native, `${dtype} bits`);
    }
  });
});

describe('checkpoint directories', () => {
  const tensors = (): Record<string, TensorToWrite> => ({
    'w.0': { dtype: 'F32', shape: [4, 8], data: uniform(32) }, // 128 bytes
    'w.1': { dtype: 'BF16', shape: [40], data: uniform(40) }, // 80 bytes
    'w.2': { dtype: 'F16', shape: [3], data: uniform(3) },
    'w.3': { dtype: 'I32', shape: [50], data: randInt(50, 9) }, // 200 bytes
  });

  test('a single model.safetensors', async () => {
    const t = tensors();
    await writeSafetensors(path.join(dir, 'model.safetensors'), t);
    const ck = await openCheckpoint(dir);
    expect(ck.names.sort()).toEqual(Object.keys(t).sort());
    expect(ck.get('w.0')).toMatchObject({ dtype: 'F32', shape: [4, 8], file: path.join(dir, 'model.safetensors') });
    expectEqual(await (await ck.load('w.0')).data(), t['w.0'].data, 'w.0');
    expect(() => ck.get('nope')).toThrow(expect.objectContaining({ code: 'E_FORMAT', message: expect.stringMatching(/'nope'/) }));
  });

  test('sharded as Hugging Face writes them, with progress', async () => {
    const t = tensors();
    const shards = await writeShardedCheckpoint(dir, t, 150); // [w.0] [w.1, w.2] [w.3]
    expect(shards).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(128 + 80 + 6 + 200);
    expect(index.weight_map['w.3']).toBe(shards[2]);
    const seen: [number, number][] = [];
    const ck = await openCheckpoint(dir, { onProgress: (a, b) => seen.push([a, b]) });
    expect(ck.files).toHaveLength(3);
    expect(ck.totalBytes).toBe(414);
    expect(ck.get('w.1').file).toBe(path.join(dir, shards[1]));
    for (const name of ck.names) {
      const x = await ck.load(name);
      const want = t[name];
      expectEqual(await x.data(), want.dtype === 'BF16' ? Float32Array.from(want.data, roundBf16) : want.dtype === 'F16' ? Float32Array.from(want.data, roundF16) : want.data, name);
    }
    expect(seen).toEqual([[128, 414], [208, 414], [214, 414], [414, 414]]);
  });
});

describe('refusals', () => {
  test('header length longer than the file, or over 100 MB; a file too short', async () => {
    const f = rawFile('long.safetensors', {}, 0, 1000);
    await rejectsWith(readSafetensorsHeader(f), 'E_FORMAT', f, /header length 1000 is longer than the file/);
    const g = rawFile('huge.safetensors', '{}', 0, 200_000_000);
    fs.truncateSync(g, 200_000_100); // sparse: the length fits the file but breaks the limit
    await rejectsWith(readSafetensorsHeader(g), 'E_FORMAT', g, /100 MB/);
    const s = path.join(dir, 'short.safetensors');
    fs.writeFileSync(s, Buffer.alloc(5));
    await rejectsWith(readSafetensorsHeader(s), 'E_FORMAT', s, /too short/);
    await rejectsWith(readSafetensorsHeader(path.join(dir, 'absent.safetensors')), 'E_FORMAT', /absent\.safetensors: cannot open/);
  });

  test('truncated data: in the header check, and when the file shrinks before the read', async () => {
    const file = path.join(dir, 't.safetensors');
    await writeSafetensors(file, { a: { dtype: 'F32', shape: [4], data: uniform(4) }, b: { dtype: 'F32', shape: [4], data: uniform(4) } });
    const h = await readSafetensorsHeader(file);
    fs.truncateSync(file, fs.statSync(file).size - 4);
    await rejectsWith(readSafetensorsHeader(file), 'E_FORMAT', file, "'b'", /run past the data section/);
    await rejectsWith(loadTensor(file, h.tensors.get('b')!), 'E_FORMAT', file, "'b'", /runs past its end/);
  });

  test('offsets out of range, sizes that disagree with the shape, overlapping tensors', async () => {
    const out = rawFile('o.safetensors', { x: { dtype: 'F32', shape: [4], data_offsets: [0, 400] } }, 16);
    await rejectsWith(readSafetensorsHeader(out), 'E_FORMAT', out, "'x'", /run past/);
    const bad = rawFile('b.safetensors', { x: { dtype: 'F32', shape: [4], data_offsets: [8, 4] } }, 16);
    await rejectsWith(readSafetensorsHeader(bad), 'E_FORMAT', bad, "'x'", /data_offsets/);
    const size = rawFile('s.safetensors', { x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, 24);
    await rejectsWith(readSafetensorsHeader(size), 'E_FORMAT', size, "'x'", /hold 16 bytes, but F32 \[2, 3\] needs 24/);
    const ov = rawFile('ov.safetensors', { x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, y: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, 24);
    await rejectsWith(readSafetensorsHeader(ov), 'E_FORMAT', ov, /'y' \[8, 24\] overlaps tensor 'x' \[0, 16\]/);
    const shp = rawFile('shape.safetensors', { x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4);
    await rejectsWith(readSafetensorsHeader(shp), 'E_FORMAT', shp, "'x'", /shape/);
  });

  test('bad JSON, a non-object header, bad metadata, an unknown dtype', async () => {
    const j = rawFile('j.safetensors', '{"x": {"dtype": ', 0);
    await rejectsWith(readSafetensorsHeader(j), 'E_FORMAT', j, /not valid UTF-8 JSON/);
    const a = rawFile('a.safetensors', '[1, 2]', 0);
    await rejectsWith(readSafetensorsHeader(a), 'E_FORMAT', a, /JSON object/);
    const m = rawFile('m.safetensors', { __metadata__: { n: 1 } }, 0);
    await rejectsWith(readSafetensorsHeader(m), 'E_FORMAT', m, /__metadata__/);
    const d = rawFile('d.safetensors', { x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8);
    await rejectsWith(readSafetensorsHeader(d), 'E_DTYPE', d, "'x'", /F64/);
  });

  test('index: shard outside the directory, missing shard, tensor not in its shard, no checkpoint', async () => {
    const ck = path.join(dir, 'ck');
    await writeSafetensors(path.join(ck, 'a.safetensors'), { x: { dtype: 'F32', shape: [2], data: uniform(2) } });
    const index = (map: Record<string, string>): void => fs.writeFileSync(path.join(ck, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
    await writeSafetensors(path.join(dir, 'x.safetensors'), { y: { dtype: 'F32', shape: [2], data: uniform(2) } });
    index({ x: 'a.safetensors', y: '../x.safetensors' });
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', 'model.safetensors.index.json', "'../x.safetensors'", "'y'", /outside/);
    index({ x: path.join(dir, 'x.safetensors') });
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', /outside/);
    index({ x: 'a.safetensors', y: 'b.safetensors' });
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', /shard b\.safetensors is missing/, "'y'");
    index({ x: 'a.safetensors', z: 'a.safetensors' });
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', "'z'", /a\.safetensors, which lacks it/);
    fs.writeFileSync(path.join(ck, 'model.safetensors.index.json'), '{"weight_map": ');
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', /index\.json: not valid JSON/);
    fs.writeFileSync(path.join(ck, 'model.safetensors.index.json'), '{"weight_map": [1]}');
    await rejectsWith(openCheckpoint(ck), 'E_FORMAT', /weight_map must be an object/);
    await rejectsWith(openCheckpoint(path.join(dir, 'empty')), 'E_FORMAT', /neither model\.safetensors nor/);
  });

  test('native readTensor checks its arguments', async () => {
    const file = path.join(dir, 'n.safetensors');
    await writeSafetensors(file, { x: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 2) } });
    const call = (p: () => Promise<unknown>): Promise<unknown> => p().catch((e: unknown) => { throw MambakitError.from(e); });
    await rejectsWith(call(() => addon.readTensor(file, -1, 3, 3, [2], 'cpu')), 'E_ARG', /offset/);
    await rejectsWith(call(() => addon.readTensor(file, 0, 3, 0, [2], 'cpu')), 'E_DTYPE', /cannot convert i32/, file);
    await rejectsWith(call(() => addon.readTensor(file, 0, 3, 3, [-2], 'cpu')), 'E_SHAPE');
    await rejectsWith(call(() => addon.readTensor(file, 0, 3, 3, [2], 'tpu')), 'E_DEVICE');
    await rejectsWith(call(() => addon.readTensor(dir, 0, 3, 3, [2], 'cpu')), 'E_FORMAT', /not a regular file/);
    await rejectsWith(call(() => addon.readTensor(path.join(dir, 'gone'), 0, 3, 3, [2], 'cpu')), 'E_FORMAT', /No such file or directory/, 'gone');
  });
});
