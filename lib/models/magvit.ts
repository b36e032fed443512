// MAGVIT-v2, the image tokenizer of Show-o and MMaDA (showlab/magvitv2; Gen-Verse/MMaDA
// models/modeling_magvitv2.py): an encoder and a decoder, each one native plan (csrc/models/magvit.cc),
// around the lookup-free quantizer:
//   encode (MAGVITv2.get_code): pixels [B, H, W, 3] in [−1, 1] → encoder → z [B, H/16, W/16, 13] →
//     code = Σ_d [z_d > 0]·2^(12−d) per position (channel 0 the high bit) → codes [B, H/16 · W/16]
//   decode (MAGVITv2.decode_code): codes → ±1 codebook vectors (bit 12−d of the code for channel d) →
//     decoder → pixels [B, H, W, 3], about [−1, 1]
// MMaDA's text ↔ image token ids add the text vocabulary size to these codes; that is the LM's business.
import * as fs from 'fs';
import * as path from 'path';

import type { WeightDType } from '../dtype';
import { isWeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { MagvitConfig, expectedMagvitTensors, magvitBuffers, parseMagvitConfig, validateMagvitCheckpoint } from '../io/magvit-config';
import { Checkpoint, ProgressFn, openCheckpoint, readConfigJson, readSafetensorsHeader } from '../io/safetensors';
import { NativeModel, NativeTensor, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import { MagvitResize, encodePng, magvitPixels, magvitToUint8 } from '../vision/magvit-image';
import type { ImageInput } from '../vision/preprocess';
import { repackConv } from '../vision/repack';

export interface LoadImageTokenizerOptions {
  device?: Device;
  /** dtype of the 1×1 convs (attention q/k/v/proj_out, nin_shortcut, quant_conv, post_quant_conv: GEMMs); k×k convs and norms stay f32. Default f32. */
  dtype?: WeightDType;
  /** Also build the plan behind encodeLatents() (a second encoder plan over the same weight tensors). */
  latents?: boolean;
  onProgress?: ProgressFn;
}

export interface EncodeImagesOptions {
  /** Square side the images are brought to (default 512, MMaDA's); a multiple of the downsampling factor. */
  resolution?: number;
  /** 'crop' (image_transform: shorter side → resolution, center crop; default) or 'squash' (image_transform_squash). */
  resize?: MagvitResize;
}

/** Codes with their grid: codes[b · height · width + i · width + j]. */
export interface ImageCodes {
  codes: Int32Array;
  batch: number;
  height: number;
  width: number;
}

const GN_EPS = 1e-6; // common_modules.Normalize

const is1x1 = (shape: readonly number[]): boolean => shape.length === 4 && shape[2] === 1 && shape[3] === 1;

/** The checkpoint in `dir`: model.safetensors (or its index), else pytorch_model.safetensors (what MMaDA's ModelMixin writes). */
async function openTokenizerCheckpoint(dir: string, onProgress?: ProgressFn): Promise<Checkpoint> {
  const root = path.resolve(dir);
  const exists = (f: string): boolean => fs.existsSync(path.join(root, f));
  if (exists('model.safetensors') || exists('model.safetensors.index.json')) return openCheckpoint(root, { onProgress });
  const alt = path.join(root, 'pytorch_model.safetensors');
  if (fs.existsSync(alt)) {
    const h = await readSafetensorsHeader(alt);
    return new Checkpoint(root, [alt], [...h.tensors.values()].map((e) => ({ ...e, file: alt })), onProgress);
  }
  if (exists('pytorch_model.bin'))
    throw new MambakitError('E_FORMAT', `${root}: only pytorch_model.bin (a pickle) is there; mambakit reads safetensors: convert it ` +
      `(safetensors.torch.save_file(torch.load(...), 'model.safetensors'), dropping the int64 buffer quantize.power_vals)`);
  throw new MambakitError('E_FORMAT', `${root}: no model.safetensors, model.safetensors.index.json or pytorch_model.safetensors`);
}

export class MagvitTokenizer {
  readonly kind = 'image-tokenizer' as const;
  readonly #encoder: NativeModel;
  readonly #decoder: NativeModel;
  readonly #latents: NativeModel | null;
  readonly #weights: Tensor[];
  #disposed = false;

  private constructor(readonly config: MagvitConfig, readonly device: Device, readonly dtype: WeightDType,
    encoder: NativeModel, decoder: NativeModel, latents: NativeModel | null, weights: Tensor[]) {
    this.#encoder = encoder;
    this.#decoder = decoder;
    this.#latents = latents;
    this.#weights = weights;
  }

  /** 2^bits codes (8192). */
  get codebookSize(): number {
    return this.config.codebookSize;
  }

  /** Loads config.json and the checkpoint in `dir` (E_FORMAT naming the file, tensor, expected and found on a mismatch). */
  static async load(dir: string, opts: LoadImageTokenizerOptions = {}): Promise<MagvitTokenizer> {
    const device = opts.device ?? 'cpu', dtype = opts.dtype ?? 'f32';
    if (!isWeightDType(dtype)) throw new MambakitError('E_DTYPE', `MagvitTokenizer.load: dtype must be f32, f16 or bf16, got '${String(dtype)}'`);
    const { cfgFile, json } = await readConfigJson(dir);
    const cfg = parseMagvitConfig(json, cfgFile);
    const ckpt = await openTokenizerCheckpoint(dir, opts.onProgress);
    validateMagvitCheckpoint(cfg, ckpt);
    await checkBuffers(cfg, ckpt);
    const owned: Tensor[] = [];
    const natives: NativeModel[] = [];
    try {
      const enc: Record<string, NativeTensor> = {}, dec: Record<string, NativeTensor> = {};
      for (const { name, shape } of expectedMagvitTensors(cfg)) {
        let t: Tensor;
        if (shape.length === 4 && !is1x1(shape)) {
          t = await repackConv(await ckpt.load(name, { dtype: 'f32' }), device, false);
        } else if (shape.length === 4) {
          const src = await ckpt.load(name, { dtype: 'f32' });
          try {
            const v = (await src.data()) as Float32Array;
            t = Tensor.from(v, [shape[0], shape[1]], { device, dtype });
          } finally {
            src.dispose();
          }
        } else {
          t = await ckpt.load(name, { dtype: 'f32', device });
        }
        owned.push(t);
        (name.startsWith('encoder.') ? enc : dec)[name] = t.handle;
      }
      const part = (p: MagvitConfig['encoder']) => ({
        ch: p.ch, ch_mult: p.chMult, num_res_blocks: p.numResBlocks, attn: p.attn.map((a) => (a ? 1 : 0)),
        z_channels: p.zChannels, groups: cfg.numGroups, eps: GN_EPS,
      });
      const encoder = call(() => addon.createModel('magvitv2', { part: 'encoder', output: 'codes', ...part(cfg.encoder) }, enc, device));
      natives.push(encoder);
      const decoder = call(() => addon.createModel('magvitv2', { part: 'decoder', ...part(cfg.decoder) }, dec, device));
      natives.push(decoder);
      const latents = opts.latents ? call(() => addon.createModel('magvitv2', { part: 'encoder', output: 'latents', ...part(cfg.encoder) }, enc, device)) : null;
      if (latents) natives.push(latents);
      return new MagvitTokenizer(cfg, device, dtype, encoder, decoder, latents, owned);
    } catch (e) {
      natives.forEach((n) => n.dispose());
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  /** The plans' blocks in order: { encoder, decoder } ('conv_in' | 'resnet' | 'attn' | 'downsample' | 'upsample' | 'conv_out' | …). */
  get blocks(): { encoder: readonly string[]; decoder: readonly string[] } {
    return { encoder: this.#encoder.blocks(), decoder: this.#decoder.blocks() };
  }

  #live(what: string): void {
    if (this.#disposed) throw new MambakitError('E_ARG', `${what}: the tokenizer was disposed`);
  }

  #checkPixels(what: string, pixels: Tensor): void {
    if (!(pixels instanceof Tensor)) throw new MambakitError('E_ARG', `${what}: pixels must be a Tensor`);
    const f = this.config.downsample, s = pixels.shape;
    if (s.length === 4 && s[3] === 3 && (s[1] % f !== 0 || s[2] % f !== 0))
      throw new MambakitError('E_SHAPE', `${what}: pixels [${s.join(', ')}]: H and W must be multiples of ${f} (the encoder downsamples by ${f}; MMaDA uses 512 × 512)`);
  }

  /** pixels f32 [B, H, W, 3] in [−1, 1] (MMaDA's normalization, channels last) → codes [B · (H/16) · (W/16)], row-major per image. */
  async encode(pixels: Tensor): Promise<Int32Array> {
    this.#live('encode');
    this.#checkPixels('encode', pixels);
    const out = Tensor.fromHandle(await call(() => this.#encoder.forward({ input: pixels.handle, mode: 'forward' })));
    try {
      return Int32Array.from((await out.data()) as Float32Array);
    } finally {
      out.dispose();
    }
  }

  /** The encoder's output before quantization, f32 [B, H/16, W/16, z] (needs `latents: true` at load). */
  async encodeLatents(pixels: Tensor): Promise<Tensor> {
    this.#live('encodeLatents');
    if (!this.#latents) throw new MambakitError('E_ARG', 'encodeLatents: load the tokenizer with { latents: true }');
    this.#checkPixels('encodeLatents', pixels);
    const latents = this.#latents;
    return Tensor.fromHandle(await call(() => latents.forward({ input: pixels.handle, mode: 'forward' })));
  }

  /** codes (B · h · w, row-major) → pixels f32 [B, h·16, w·16, 3], about [−1, 1] (unclamped, as decode_code returns them). */
  async decode(codes: Int32Array | readonly number[], batch: number, height: number, width: number): Promise<Tensor> {
    this.#live('decode');
    for (const [k, v] of [['batch', batch], ['height', height], ['width', width]] as const)
      if (!Number.isInteger(v) || v < 1) throw new MambakitError('E_ARG', `decode: ${k} must be a positive integer, got ${v}`);
    const n = batch * height * width;
    if (codes.length !== n) throw new MambakitError('E_SHAPE', `decode: ${codes.length} codes for ${batch} × ${height} × ${width} = ${n} positions`);
    const K = this.config.codebookSize;
    for (let i = 0; i < n; ++i)
      if (!Number.isInteger(codes[i]) || codes[i] < 0 || codes[i] >= K)
        throw new MambakitError('E_ARG', `decode: code ${codes[i]} at position ${i} is outside the codebook [0, ${K}) (MMaDA's image token ids minus the text vocabulary size)`);
    const t = Tensor.from(codes instanceof Int32Array ? codes : Int32Array.from(codes), [batch, height, width], { device: this.device, dtype: 'i32' });
    try {
      return Tensor.fromHandle(await call(() => this.#decoder.forward({ input: t.handle, mode: 'forward' })));
    } finally {
      t.dispose();
    }
  }

  /** Decodes images (paths or encoded bytes), brings them to resolution² as MMaDA does, and encodes them. */
  async encodeImages(images: readonly ImageInput[], opts: EncodeImagesOptions = {}): Promise<ImageCodes> {
    this.#live('encodeImages');
    if (!Array.isArray(images) || images.length < 1) throw new MambakitError('E_ARG', 'encodeImages: give at least one image');
    const size = opts.resolution ?? 512, resize = opts.resize ?? 'crop', f = this.config.downsample;
    if (!Number.isInteger(size) || size < f || size % f !== 0 || size > 4096)
      throw new MambakitError('E_ARG', `encodeImages: resolution must be a multiple of ${f} (the encoder's downsampling) in [${f}, 4096], got ${size}`);
    if (resize !== 'crop' && resize !== 'squash') throw new MambakitError('E_ARG', `encodeImages: resize must be 'crop' or 'squash', got ${JSON.stringify(resize)}`);
    const all = await Promise.all(images.map((img, i) => magvitPixels(img, size, resize, i)));
    const data = new Float32Array(images.length * size * size * 3);
    all.forEach((a, i) => data.set(a, i * a.length));
    const pixels = Tensor.from(data, [images.length, size, size, 3], { device: this.device });
    try {
      return { codes: await this.encode(pixels), batch: images.length, height: size / f, width: size / f };
    } finally {
      pixels.dispose();
    }
  }

  /** Decodes codes to images and returns one PNG per image (uint8 as MMaDA converts: clamp((x + 1) / 2, 0, 1) · 255, truncated). */
  async decodeToPng(codes: Int32Array | readonly number[], batch: number, height: number, width: number): Promise<Buffer[]> {
    const px = await this.decode(codes, batch, height, width);
    try {
      const [, H, W] = px.shape;
      const all = magvitToUint8((await px.data()) as Float32Array);
      const n = H * W * 3;
      return await Promise.all(Array.from({ length: batch }, (_, b) => encodePng(all.subarray(b * n, (b + 1) * n), W, H)));
    } finally {
      px.dispose();
    }
  }

  /** Frees the plans and the weights. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#encoder.dispose();
    this.#decoder.dispose();
    this.#latents?.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}

// LFQuantizer's buffers, when the checkpoint has them, must be what the quantizer derives from
// codebook_dim (the kernels compute them): embedding[i, d] = bit (D-1-d) of i ? 1 : -1.
async function checkBuffers(cfg: MagvitConfig, ckpt: Checkpoint): Promise<void> {
  const [emb, pv] = magvitBuffers(cfg);
  const D = cfg.codebookBits;
  if (ckpt.has(emb.name)) {
    const t = await ckpt.load(emb.name, { dtype: 'f32' });
    try {
      const v = (await t.data()) as Float32Array;
      for (let i = 0; i < cfg.codebookSize; ++i)
        for (let d = 0; d < D; ++d)
          if (v[i * D + d] !== (((i >> (D - 1 - d)) & 1) ? 1 : -1))
            throw new MambakitError('E_FORMAT', `${ckpt.get(emb.name).file}: tensor '${emb.name}'[${i}, ${d}] = ${v[i * D + d]}, expected LFQ's ${((i >> (D - 1 - d)) & 1) ? 1 : -1}`);
    } finally {
      t.dispose();
    }
  }
  if (ckpt.has(pv.name)) {
    // power_vals is an int64 buffer in PyTorch checkpoints (int32 in ours): read it as stored
    const entry = ckpt.get(pv.name);
    let v: ArrayLike<number | bigint>;
    if (entry.dtype === 'I64') {
      const raw = await ckpt.readRaw(pv.name);
      v = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
    } else {
      const t = await ckpt.load(pv.name);
      try {
        v = await t.data();
      } finally {
        t.dispose();
      }
    }
    for (let d = 0; d < D; ++d)
      if (Number(v[d]) !== 2 ** (D - 1 - d))
        throw new MambakitError('E_FORMAT', `${entry.file}: tensor '${pv.name}'[${d}] = ${Number(v[d])}, expected ${2 ** (D - 1 - d)}`);
  }
}
