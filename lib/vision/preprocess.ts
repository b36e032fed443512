// timm's eval transform for mambaout_* (pretrained cfg: input 224, crop_pct 1.0, bicubic, ImageNet
// mean/std): resize the shorter side to floor(224 / crop_pct) = 224, center-crop 224×224, scale to
// [0, 1], normalize. Decoding and resampling are sharp's (libvips); its bicubic is Catmull-Rom like
// PIL's, but the two resamplers round differently, so pixels can differ from timm's by a few 1/255.
import type SharpT from 'sharp';

import { MambakitError } from '../errors';
import { Device, Tensor } from '../tensor';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface PreprocessOptions {
  /** Output side (default 224). */
  size?: number;
  /** Resize the shorter side to floor(size / cropPct) before the center crop (default 1.0, timm's for mambaout). */
  cropPct?: number;
  /** Per-channel mean and std the [0, 1] values are normalized with (default ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
}

/** An image file path or its encoded bytes (JPEG, PNG, WebP, …: anything sharp decodes). */
export type ImageInput = string | Buffer | Uint8Array;

// sharp (native libvips) is loaded on first use, so importing mambakit does not load it for language models.
let sharpFn: typeof SharpT | null = null;
export async function loadSharp(): Promise<typeof SharpT> {
  if (!sharpFn) {
    try {
      sharpFn = (await import('sharp')).default;
    } catch (e) {
      throw new MambakitError('E_ARG', `decoding images needs the 'sharp' package, which failed to load: ${(e as Error).message}`);
    }
  }
  return sharpFn;
}

const describe = (img: ImageInput, i: number): string => (typeof img === 'string' ? img : `image ${i} (${img.length} bytes)`);

/**
 * The shared decode → resize → center crop: decodes `img` (sRGB, alpha dropped), resizes it to `resized(w, h)`
 * with sharp's bicubic, center-crops size × size (offsets int(round((resized − size) / 2)), Python's round: half
 * to even, as torchvision's CenterCrop) and maps each byte through `value(byte, channel)`: HWC f32.
 */
export async function decodeCropped(img: ImageInput, index: number, size: number, resized: (w: number, h: number) => [number, number],
  value: (byte: number, channel: number) => number): Promise<Float32Array> {
  if (typeof img !== 'string' && !(img instanceof Uint8Array)) throw new MambakitError('E_ARG', `image ${index}: expected a file path or a Buffer`);
  const what = describe(img, index);
  const sharp = await loadSharp();
  let pixels: Buffer, rw: number, rh: number;
  try {
    const src = sharp(img, { failOn: 'error' });
    const meta = await src.metadata();
    const w = meta.width ?? 0, h = meta.height ?? 0;
    if (w < 1 || h < 1) throw new Error('no image dimensions');
    [rw, rh] = resized(w, h);
    pixels = await src.removeAlpha().toColourspace('srgb').resize(rw, rh, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer();
  } catch (e) {
    throw new MambakitError('E_FORMAT', `${what}: cannot decode as an image: ${(e as Error).message}`);
  }
  if (pixels.length !== rw * rh * 3) throw new MambakitError('E_FORMAT', `${what}: decoded to ${pixels.length} bytes, expected ${rw}×${rh}×3`);
  const left = roundHalfEven((rw - size) / 2), top = roundHalfEven((rh - size) / 2);
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; ++y)
    for (let x = 0; x < size * 3; ++x) out[y * size * 3 + x] = value(pixels[((top + y) * rw + left) * 3 + x], x % 3);
  return out;
}

/** torchvision Resize(int): the shorter side becomes `short`, the longer int(short · long / short). */
export function shorterSideTo(short: number): (w: number, h: number) => [number, number] {
  return (w, h) => (w <= h ? [short, Math.max(short, Math.trunc((short * h) / w))] : [Math.max(short, Math.trunc((short * w) / h)), short]);
}

/** One image → normalized HWC f32 values (size × size × 3). */
export async function preprocessImage(img: ImageInput, opts: PreprocessOptions = {}, index = 0): Promise<Float32Array> {
  const size = opts.size ?? 224, cropPct = opts.cropPct ?? 1.0;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new MambakitError('E_ARG', `preprocess: size must be an integer in [1, 4096], got ${size}`);
  if (!(cropPct > 0 && cropPct <= 1)) throw new MambakitError('E_ARG', `preprocess: cropPct must be in (0, 1], got ${cropPct}`);
  const mean = opts.mean ?? IMAGENET_MEAN, std = opts.std ?? IMAGENET_STD;
  return decodeCropped(img, index, size, shorterSideTo(Math.floor(size / cropPct)), (v, c) => (v / 255 - mean[c]) / std[c]);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A batch of images → pixels f32 [B, size, size, 3] (channels last) on `device`. */
export async function preprocessImages(images: readonly ImageInput[], opts: PreprocessOptions & { device?: Device } = {}): Promise<Tensor> {
  if (!Array.isArray(images) || images.length < 1) throw new MambakitError('E_ARG', 'preprocess: give at least one image');
  const size = opts.size ?? 224;
  const all = await Promise.all(images.map((img, i) => preprocessImage(img, opts, i)));
  const data = new Float32Array(images.length * size * size * 3);
  all.forEach((a, i) => data.set(a, i * a.length));
  return Tensor.from(data, [images.length, size, size, 3], { device: opts.device ?? 'cpu' });
}
