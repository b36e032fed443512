// Image I/O of the MAGVIT-v2 tokenizer as MMaDA does it.
// In (Gen-Verse/MMaDA training/utils.py image_transform, used by app.py and inference_mmu.py at 512):
//   torchvision Resize(512, BICUBIC) (the shorter side to 512, the longer int(512 · long / short)),
//   CenterCrop(512) (offsets int(round((side − 512) / 2))), ToTensor (÷ 255), Normalize(0.5, 0.5):
//   pixels in [−1, 1]. image_transform_squash (inference_mmu.py for some datasets) resizes to
//   512 × 512 without keeping the aspect ratio.
// Out (inference_t2i.py, models/modeling_mmada.py): torch.clamp((x + 1) / 2, 0, 1) · 255 in f32, then
//   numpy astype(uint8), which truncates (no rounding).
// Decoding and resampling are sharp's (libvips), as in lib/vision/preprocess.ts: its bicubic is not
// PIL's, so pixels can differ from MMaDA's by a few 1/255.
import type SharpT from 'sharp';

import { MambakitError } from '../errors';
import type { ImageInput } from './preprocess';

let sharpFn: typeof SharpT | null = null;
async function loadSharp(): Promise<typeof SharpT> {
  if (!sharpFn) {
    try {
      sharpFn = (await import('sharp')).default;
    } catch (e) {
      throw new MambakitError('E_ARG', `image I/O needs the 'sharp' package, which failed to load: ${(e as Error).message}`);
    }
  }
  return sharpFn;
}

const describe = (img: ImageInput, i: number): string => (typeof img === 'string' ? img : `image ${i} (${img.length} bytes)`);

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export type MagvitResize = 'crop' | 'squash';

/** One image → HWC f32 values in [−1, 1] (size × size × 3), as image_transform (crop) or image_transform_squash. */
export async function magvitPixels(img: ImageInput, size: number, resize: MagvitResize, index = 0): Promise<Float32Array> {
  if (typeof img !== 'string' && !(img instanceof Uint8Array)) throw new MambakitError('E_ARG', `image ${index}: expected a file path or a Buffer`);
  const what = describe(img, index);
  const sharp = await loadSharp();
  let pixels: Buffer, rw: number, rh: number;
  try {
    const src = sharp(img, { failOn: 'error' });
    const meta = await src.metadata();
    const w = meta.width ?? 0, h = meta.height ?? 0;
    if (w < 1 || h < 1) throw new Error('no image dimensions');
    if (resize === 'squash') [rw, rh] = [size, size];
    else [rw, rh] = w <= h ? [size, Math.max(size, Math.trunc((size * h) / w))] : [Math.max(size, Math.trunc((size * w) / h)), size];
    pixels = await src.removeAlpha().toColourspace('srgb').resize(rw, rh, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer();
  } catch (e) {
    throw new MambakitError('E_FORMAT', `${what}: cannot decode as an image: ${(e as Error).message}`);
  }
  if (pixels.length !== rw * rh * 3) throw new MambakitError('E_FORMAT', `${what}: decoded to ${pixels.length} bytes, expected ${rw}×${rh}×3`);
  const left = roundHalfEven((rw - size) / 2), top = roundHalfEven((rh - size) / 2);
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; ++y)
    for (let x = 0; x < size * 3; ++x) out[y * size * 3 + x] = (pixels[((top + y) * rw + left) * 3 + x] / 255 - 0.5) / 0.5;
  return out;
}

/** Decoder output values (HWC, about [−1, 1]) → uint8 RGB: clamp((x + 1) / 2, 0, 1) · 255 in f32, truncated. */
export function magvitToUint8(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length);
  const f = Math.fround;
  for (let i = 0; i < x.length; ++i) {
    const v = Math.min(Math.max(f(f(x[i] + 1) / 2), 0), 1);
    out[i] = Math.trunc(f(v * 255)); // NaN → 0, as numpy's cast commonly gives
  }
  return out;
}

/** uint8 RGB (H × W × 3) → PNG bytes. */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  const sharp = await loadSharp();
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
}
