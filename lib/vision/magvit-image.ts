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
import { ImageInput, decodeCropped, loadSharp, shorterSideTo } from './preprocess';

export type MagvitResize = 'crop' | 'squash';

/** One image → HWC f32 values in [−1, 1] (size × size × 3), as image_transform (crop) or image_transform_squash. */
export async function magvitPixels(img: ImageInput, size: number, resize: MagvitResize, index = 0): Promise<Float32Array> {
  const resized = resize === 'squash' ? (): [number, number] => [size, size] : shorterSideTo(size);
  return decodeCropped(img, index, size, resized, (v) => (v / 255 - 0.5) / 0.5);
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
