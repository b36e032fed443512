// The eval transform (shorter side → 224 bicubic, center crop 224, ImageNet mean/std) on images made
// with sharp here: solid colours give exactly the normalized colour, and images with a known layout
// show that the crop is the centre.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { IMAGENET_MEAN, IMAGENET_STD, preprocessImage, preprocessImages } from '../../lib/vision/preprocess';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-prep-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type RGB = [number, number, number];
const norm = (c: RGB): number[] => c.map((v, i) => (v / 255 - IMAGENET_MEAN[i]) / IMAGENET_STD[i]);
const solid = (w: number, h: number, [r, g, b]: RGB, channels: 3 | 4 = 3) =>
  sharp({ create: { width: w, height: h, channels, background: { r, g, b, alpha: 1 } } });

// An RGB image from a function of (x, y).
function drawn(w: number, h: number, f: (x: number, y: number) => RGB) {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; ++y) for (let x = 0; x < w; ++x) buf.set(f(x, y), (y * w + x) * 3);
  return sharp(buf, { raw: { width: w, height: h, channels: 3 } });
}

function pixel(a: Float32Array, x: number, y: number, size = 224): number[] {
  const o = (y * size + x) * 3;
  return [a[o], a[o + 1], a[o + 2]];
}

function expectPixel(a: Float32Array, x: number, y: number, c: RGB, tol255 = 0.5): void {
  const got = pixel(a, x, y), want = norm(c);
  got.forEach((v, i) => expect(Math.abs(v - want[i]) * IMAGENET_STD[i] * 255).toBeLessThanOrEqual(tol255));
}

test('a solid-colour PNG becomes exactly the normalized colour everywhere', async () => {
  const c: RGB = [200, 100, 50];
  const a = await preprocessImage(await solid(300, 200, c).png().toBuffer());
  expect(a.length).toBe(224 * 224 * 3);
  const want = norm(c);
  let err = 0;
  for (let i = 0; i < a.length; ++i) err = Math.max(err, Math.abs(a[i] - want[i % 3]));
  expect(err).toBeLessThan(1e-6);
});

test('a solid-colour JPEG is within JPEG rounding of the colour', async () => {
  const file = path.join(tmp, 'solid.jpg');
  await solid(257, 333, [30, 160, 220]).jpeg({ quality: 95 }).toFile(file);
  const a = await preprocessImage(file);
  for (const [x, y] of [[0, 0], [111, 111], [223, 223]]) expectPixel(a, x, y, [30, 160, 220], 3);
});

test('a wide image is cropped in the centre: only the middle band survives', async () => {
  // 896×448: red | green (middle half) | blue. Resized to 448×224, the crop keeps columns 112..335.
  const img = drawn(896, 448, (x) => (x < 224 ? [255, 0, 0] : x < 672 ? [0, 255, 0] : [0, 0, 255]));
  const a = await preprocessImage(await img.png().toBuffer());
  for (const x of [4, 60, 112, 160, 219]) for (const y of [0, 100, 223]) expectPixel(a, x, y, [0, 255, 0], 1);
});

test('a tall image is cropped in the centre: the crop shows the top/bottom boundary at its middle row', async () => {
  // 200×400, black above y = 200, white below: resized to 224×448, crop rows 112..335, boundary at row 112.
  const img = drawn(200, 400, (_x, y) => (y < 200 ? [0, 0, 0] : [255, 255, 255]));
  const a = await preprocessImage(await img.png().toBuffer());
  for (const x of [0, 100, 223]) {
    expectPixel(a, x, 20, [0, 0, 0], 1);
    expectPixel(a, x, 100, [0, 0, 0], 2);
    expectPixel(a, x, 124, [255, 255, 255], 2);
    expectPixel(a, x, 220, [255, 255, 255], 1);
  }
});

test('a batch of paths and Buffers, grey and RGBA PNGs, gives [B, 224, 224, 3]', async () => {
  const grey = path.join(tmp, 'grey.png');
  await sharp({ create: { width: 50, height: 80, channels: 3, background: { r: 90, g: 90, b: 90 } } }).toColourspace('b-w').png().toFile(grey);
  expect((await sharp(grey).metadata()).channels).toBe(1);
  const rgba = await solid(64, 64, [10, 20, 30], 4).png().toBuffer();
  const t = await preprocessImages([grey, rgba]);
  expect(t.shape).toEqual([2, 224, 224, 3]);
  const a = (await t.data()) as Float32Array;
  expectPixel(a, 5, 5, [90, 90, 90], 1);
  expectPixel(a.subarray(224 * 224 * 3), 5, 5, [10, 20, 30], 1);
  t.dispose();
});

test('cropPct < 1 resizes the shorter side to floor(size / cropPct) first', async () => {
  // 256×256 with a 224-wide green centre square in red: cropPct 0.875 → resize to 256 (no-op), crop 224
  const img = drawn(256, 256, (x, y) => (x >= 16 && x < 240 && y >= 16 && y < 240 ? [0, 255, 0] : [255, 0, 0]));
  const a = await preprocessImage(await img.png().toBuffer(), { cropPct: 0.875 });
  for (const [x, y] of [[0, 0], [223, 0], [0, 223], [223, 223], [112, 112]]) expectPixel(a, x, y, [0, 255, 0], 1);
});

test('unreadable and non-image inputs are E_FORMAT naming the file; bad arguments E_ARG', async () => {
  const missing = path.join(tmp, 'nope.png');
  await expect(preprocessImage(missing)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining(missing) });
  const text = path.join(tmp, 'notes.jpg');
  fs.writeFileSync(text, 'not an image at all');
  await expect(preprocessImage(text)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining(text) });
  await expect(preprocessImage(Buffer.from([1, 2, 3]))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/image 0 \(3 bytes\)/) });
  await expect(preprocessImages([])).rejects.toMatchObject({ code: 'E_ARG' });
  await expect(preprocessImage(text, { cropPct: 2 })).rejects.toMatchObject({ code: 'E_ARG' });
  await expect(preprocessImage(42 as unknown as string)).rejects.toMatchObject({ code: 'E_ARG' });
});
