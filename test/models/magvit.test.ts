// The MAGVIT-v2 image tokenizer (MagvitTokenizer, family "magvitv2") on random-weight checkpoints in the
// published layout, against the float64 transcription of Gen-Verse/MMaDA models/modeling_magvitv2.py
// (test/helpers/magvit-ref.ts): latents and codes of encode, pixels of decode, PNG I/O through sharp,
// the published architecture's tensor list, and the coded errors.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { MagvitTokenizer, Tensor, loadImageTokenizer } from '../../lib';
import { expectedMagvitTensors, parseMagvitConfig } from '../../lib/io/magvit-config';
import { magvitToUint8 } from '../../lib/vision/magvit-image';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { SMALL_MAGVIT, Weights, randomMagvitWeights, smallConfig, writeMagvitCheckpoint } from '../helpers/magvit-ckpt';
import { decoderRef, encoderRef } from '../helpers/magvit-ref';
import { SEED, randInt, uniform } from '../helpers/random';

const TOL = 1e-4; // f32 through ~25 layers against float64, relative to the output's scale

let root: string;
let dir: string;
let weights: Weights;
const cfg = smallConfig();

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-magvit-'));
  dir = path.join(root, 'small');
  weights = randomMagvitWeights(cfg);
  await writeMagvitCheckpoint(dir, cfg, weights);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('the published configuration: MAGVITv2() defaults, names and shapes as the state dict has them', () => {
  const c = parseMagvitConfig({ _class_name: 'MAGVITv2', _diffusers_version: '0.30.1' }, 'config.json');
  expect(c.downsample).toBe(16);
  expect(c.codebookSize).toBe(8192);
  expect(c.encoder.attn).toEqual([false, false, false, false, false]); // attn_resolutions [5] never meets 256, 128, …, 16
  const t = new Map(expectedMagvitTensors(c).map((e) => [e.name, e.shape]));
  expect(t.get('encoder.conv_in.weight')).toEqual([128, 3, 3, 3]);
  expect(t.get('encoder.down.1.block.0.nin_shortcut.weight')).toEqual([256, 128, 1, 1]);
  expect(t.get('encoder.down.3.downsample.conv.weight')).toEqual([512, 512, 3, 3]);
  expect(t.has('encoder.down.4.downsample.conv.weight')).toBe(false);
  expect(t.get('encoder.mid.attn_1.q.weight')).toEqual([512, 512, 1, 1]);
  expect(t.get('encoder.conv_out.weight')).toEqual([13, 512, 3, 3]);
  expect(t.get('encoder.quant_conv.weight')).toEqual([13, 13, 1, 1]);
  expect(t.get('decoder.conv_in.weight')).toEqual([512, 13, 3, 3]);
  expect(t.get('decoder.up.3.block.0.nin_shortcut.weight')).toEqual([256, 512, 1, 1]);
  expect(t.get('decoder.up.4.upsample.conv.weight')).toEqual([512, 512, 3, 3]);
  expect(t.has('decoder.up.0.upsample.conv.weight')).toBe(false);
  expect(t.get('decoder.up.0.block.3.conv2.weight')).toEqual([128, 128, 3, 3]);
  expect(t.get('decoder.conv_out.weight')).toEqual([3, 128, 3, 3]);
  expect(t.get('decoder.post_quant_conv.weight')).toEqual([13, 13, 1, 1]);
  const params = expectedMagvitTensors(c).reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0);
  expect(params).toBe(95387004); // from the shapes above: a regression value, not yet checked against the published file
});

describe.each(DEVICES)('MagvitTokenizer on %s', (device) => {
  let tok: MagvitTokenizer;
  beforeAll(async () => {
    tok = await MagvitTokenizer.load(dir, { device, latents: true });
  });
  afterAll(() => tok?.dispose());

  test('plans: blocks in the reference order', () => {
    expect(tok.blocks.encoder).toEqual(['conv_in', 'resnet', 'downsample', 'resnet', 'attn', 'resnet', 'attn', 'downsample', 'resnet',
      'resnet', 'attn', 'resnet', 'conv_out', 'quant_conv']);
    expect(tok.blocks.decoder).toEqual(['post_quant_conv', 'conv_in', 'resnet', 'attn', 'resnet', 'resnet', 'resnet', 'upsample',
      'resnet', 'attn', 'upsample', 'resnet', 'conv_out']);
  });

  test('encode: latents within f32 tolerance of float64, codes equal wherever the latent is not within tolerance of 0', async () => {
    const [B, H, W] = [2, 12, 20];
    const px = uniform(B * H * W * 3, -1, 1);
    const ref = encoderRef(cfg, weights, { d: Float64Array.from(px), B, H, W, C: 3 });
    expect([ref.H, ref.W, ref.C]).toEqual([3, 5, 5]);
    const pixels = Tensor.from(px, [B, H, W, 3], { device });
    const lat = await tok.encodeLatents(pixels);
    expect(lat.shape).toEqual([B, 3, 5, 5]);
    const z = (await lat.data()) as Float32Array;
    expectClose(z, ref.d, TOL, 'latents');
    const codes = await tok.encode(pixels);
    expect(codes).toBeInstanceOf(Int32Array);
    expect(codes.length).toBe(B * 15);
    let scale = 0;
    for (const v of ref.d) scale = Math.max(scale, Math.abs(v));
    const D = cfg.codebookBits;
    let checked = 0;
    for (let r = 0; r < codes.length; ++r)
      for (let d = 0; d < D; ++d) {
        const zr = ref.d[r * D + d];
        const bit = (codes[r] >> (D - 1 - d)) & 1;
        expect(bit).toBe(z[r * D + d] > 0 ? 1 : 0); // the codes are the signs of this backend's own latents
        if (Math.abs(zr) <= 2 * TOL * scale) continue;
        checked++;
        if (bit !== (zr > 0 ? 1 : 0)) throw new Error(`code ${r} bit ${d}: ${bit}, reference latent ${zr} (seed ${SEED})`);
      }
    expect(checked).toBeGreaterThan(0.9 * codes.length * D);
  });

  test('decode within f32 tolerance of float64 (decode_code on a non-square grid)', async () => {
    const [B, h, w] = [2, 3, 2];
    const codes = randInt(B * h * w, cfg.codebookSize);
    const ref = decoderRef(cfg, weights, codes, B, h, w);
    const px = await tok.decode(codes, B, h, w);
    expect(px.shape).toEqual([B, 12, 8, 3]);
    expectClose(await px.data(), ref.d, TOL, 'decode');
    const again = await tok.decode(Array.from(codes), B, h, w);
    expectEqual(await again.data(), await px.data(), 'decode from number[]');
  });

  test('dtype bf16 (the 1×1 convs) stays within 2e-2 of f32', async () => {
    const low = await MagvitTokenizer.load(dir, { device, dtype: 'bf16' });
    try {
      const codes = randInt(2 * 2 * 3, cfg.codebookSize);
      const a = await (await tok.decode(codes, 2, 2, 3)).data(), b = await (await low.decode(codes, 2, 2, 3)).data();
      expectClose(b, a, 2e-2, 'bf16 decode');
    } finally {
      low.dispose();
    }
  });

  test('PNG I/O: encodeImages as image_transform, decodeToPng as MMaDA converts to uint8', async () => {
    // a 32×16 image: the shorter side is already 16, so the resize keeps it and the crop takes columns 8..24
    const rgb = new Uint8Array(32 * 16 * 3).map((_, i) => (i * 37 + (i >> 5)) % 256);
    const png = await sharp(Buffer.from(rgb), { raw: { width: 32, height: 16, channels: 3 } }).png().toBuffer();
    const px = new Float32Array(16 * 16 * 3);
    for (let y = 0; y < 16; ++y) for (let x = 0; x < 48; ++x) px[y * 48 + x] = (rgb[(y * 32 + 8) * 3 + x] / 255 - 0.5) / 0.5;
    const got = await tok.encodeImages([png], { resolution: 16 });
    expect([got.batch, got.height, got.width]).toEqual([1, 4, 4]);
    expectEqual(got.codes, await tok.encode(Tensor.from(px, [1, 16, 16, 3], { device })), 'encodeImages codes');
    const sq = await tok.encodeImages([png, png], { resolution: 8, resize: 'squash' });
    expect(sq.codes.length).toBe(2 * 4);
    const pngs = await tok.decodeToPng(got.codes, 1, 4, 4);
    expect(pngs).toHaveLength(1);
    const { data, info } = await sharp(pngs[0]).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([16, 16, 3]);
    const dec = (await (await tok.decode(got.codes, 1, 4, 4)).data()) as Float32Array;
    expectEqual(data, magvitToUint8(dec), 'png pixels');
    // and within one level of the float64 reference's pixels converted the same way
    const ref = decoderRef(cfg, weights, got.codes, 1, 4, 4).d;
    const refU8 = ref.map((v) => Math.trunc(Math.min(Math.max((v + 1) / 2, 0), 1) * 255));
    let worst = 0;
    for (let i = 0; i < refU8.length; ++i) worst = Math.max(worst, Math.abs(data[i] - refU8[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });

  test('bad input: not an image, a size the encoder cannot take, a code outside the codebook', async () => {
    await expect(tok.encodeImages([Buffer.from('not an image at all')])).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/image 0 \(19 bytes\): cannot decode/) });
    await expect(tok.encodeImages([path.join(root, 'missing.png')])).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/missing\.png/) });
    await expect(tok.encodeImages([Buffer.alloc(1)], { resolution: 18 })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/multiple of 4/) });
    await expect(tok.encode(Tensor.from(uniform(10 * 12 * 3), [1, 10, 12, 3], { device }))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/multiples of 4/) });
    await expect(tok.encode(Tensor.from(uniform(8 * 8 * 4), [1, 8, 8, 4], { device }))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/\[B >= 1, H, W, 3\]/) });
    await expect(tok.decode(Int32Array.from([1, 2, 32, 0]), 1, 2, 2)).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/code 32 at position 2 is outside the codebook \[0, 32\)/) });
    await expect(tok.decode(Int32Array.from([1, 2, 3]), 1, 2, 2)).rejects.toMatchObject({ code: 'E_SHAPE' });
    if (device !== 'cpu')
      await expect(tok.encode(Tensor.from(uniform(4 * 4 * 3), [1, 4, 4, 3], { device: 'cpu' }))).rejects.toMatchObject({ code: 'E_DEVICE' });
  });
});

describe('loading', () => {
  const variant = async (name: string, edit: (w: Weights) => void, opts: Parameters<typeof writeMagvitCheckpoint>[3] = {}): Promise<string> => {
    const d = path.join(root, name);
    const w = { ...weights };
    edit(w);
    await writeMagvitCheckpoint(d, cfg, w, opts);
    return d;
  };

  test('loadImageTokenizer, pytorch_model.safetensors and the quantizer buffers', async () => {
    const emb = new Float32Array(32 * 5).map((_, i) => (((Math.floor(i / 5) >> (4 - (i % 5))) & 1) ? 1 : -1));
    const d = await variant('alt-file', () => undefined, {
      file: 'pytorch_model.safetensors',
      extra: { 'quantize.embedding': { dtype: 'F32', shape: [32, 5], data: emb }, 'quantize.power_vals': { dtype: 'I64', shape: [5], data: BigInt64Array.from([16n, 8n, 4n, 2n, 1n]) } },  // int64, as PyTorch saves it
    });
    const t = await loadImageTokenizer(d);
    expect(t.codebookSize).toBe(32);
    t.dispose();
    const bad = emb.slice();
    bad[7] = -bad[7];
    const d2 = await variant('bad-buffer', () => undefined, { extra: { 'quantize.embedding': { dtype: 'F32', shape: [32, 5], data: bad } } });
    await expect(loadImageTokenizer(d2)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/quantize\.embedding'\[1, 2\]/) });
    const d3 = await variant('bad-power', () => undefined, { extra: { 'quantize.power_vals': { dtype: 'I64', shape: [5], data: BigInt64Array.from([16n, 8n, 4n, 1n, 2n]) } } });
    await expect(loadImageTokenizer(d3)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/quantize\.power_vals'\[3\] = 1, expected 2/) });
  });

  test('coded E_FORMAT errors: missing, misshapen, unexpected tensors; configs; files', async () => {
    const miss = await variant('missing', (w) => void delete w['decoder.up.1.block.0.conv1.weight']);
    await expect(loadImageTokenizer(miss)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/tensor 'decoder\.up\.1\.block\.0\.conv1\.weight' is missing \(expected \[8, 16, 3, 3\]\)/) });
    const d = path.join(root, 'misshapen');
    const w = { ...weights, 'encoder.quant_conv.weight': uniform(5 * 4) };
    fs.mkdirSync(d, { recursive: true });
    await writeMagvitCheckpoint(d, cfg, {}, {
      extra: Object.fromEntries(Object.entries(w).map(([n, v]) => [n, { dtype: 'F32' as const, shape: n === 'encoder.quant_conv.weight' ? [5, 4, 1, 1] : expectedMagvitTensors(cfg).find((e) => e.name === n)!.shape, data: v }])),
    });
    await expect(loadImageTokenizer(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/'encoder\.quant_conv\.weight' has shape \[5, 4, 1, 1\], expected \[5, 5, 1, 1\]/) });
    const extra = await variant('extra', (x) => void (x['encoder.mid.attn_2.q.weight'] = uniform(4)));
    await expect(loadImageTokenizer(extra)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/unexpected tensor 'encoder\.mid\.attn_2\.q\.weight'/) });
    const cfgBad = await variant('cfg-class', () => undefined, { config: { _class_name: 'VQModel' } });
    await expect(loadImageTokenizer(cfgBad)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/config\.json: not a MAGVIT-v2 tokenizer config/) });
    const cfgGroups = await variant('cfg-groups', () => undefined, { config: { ...SMALL_MAGVIT, num_groups: 3 } });
    await expect(loadImageTokenizer(cfgGroups)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/not a multiple of num_groups 3/) });
    const bin = path.join(root, 'bin-only');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'config.json'), JSON.stringify(SMALL_MAGVIT));
    fs.writeFileSync(path.join(bin, 'pytorch_model.bin'), 'x');
    await expect(loadImageTokenizer(bin)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/pytorch_model\.bin.*convert/) });
  });
});
