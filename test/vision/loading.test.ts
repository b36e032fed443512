// Loading timm-layout MambaOut checkpoints through loadModel, classify() end to end, and the coded
// errors for bad checkpoints, configs and inputs.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { Tensor, loadClassifier, loadModel } from '../../lib';
import { writeSafetensors } from '../../lib/io/safetensors';
import { MambaOutClassifier } from '../../lib/models/mambaout';
import { IMAGENET_CLASSES } from '../../lib/vision/imagenet-classes';
import { preprocessImages } from '../../lib/vision/preprocess';
import { hasGpu } from '../helpers/backends';
import { MambaOutShape, Weights, randomMambaOutWeights, writeMambaOutCheckpoint } from '../helpers/mambaout-ckpt';
import { uniform } from '../helpers/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-mambaout-load-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TINYNET: MambaOutShape = { depths: [1, 1, 2, 1], dims: [8, 16, 24, 32], numClasses: 1000 };
let n = 0;
async function ckpt(w: Weights, s: MambaOutShape = TINYNET, config: Record<string, unknown> = {}): Promise<string> {
  const dir = path.join(tmp, `c${n++}`);
  await writeMambaOutCheckpoint(dir, s, w, { config });
  return dir;
}

describe('loadModel + classify', () => {
  let dir: string;
  let model: MambaOutClassifier;
  beforeAll(async () => {
    dir = await ckpt(randomMambaOutWeights(TINYNET));
    model = await loadClassifier(dir);
  });
  afterAll(() => model.dispose());

  test('loadModel returns the classifier; ImageNet labels for 1000 classes', () => {
    expect(model).toBeInstanceOf(MambaOutClassifier);
    expect(model.config).toMatchObject({ depths: TINYNET.depths, dims: TINYNET.dims, numClasses: 1000 });
    expect(IMAGENET_CLASSES).toHaveLength(1000);
    expect(IMAGENET_CLASSES[0]).toBe('tench, Tinca tinca');
    expect(IMAGENET_CLASSES[207]).toBe('golden retriever');
    expect(model.labels).toBe(IMAGENET_CLASSES);
  });

  test('classify gives per image the topK classes of softmax(forward(preprocess(image)))', async () => {
    const png = await sharp({ create: { width: 300, height: 240, channels: 3, background: { r: 250, g: 20, b: 90 } } }).png().toBuffer();
    const file = path.join(tmp, 'b.jpg');
    await sharp({ create: { width: 180, height: 260, channels: 3, background: { r: 10, g: 200, b: 40 } } }).jpeg().toFile(file);
    const top = await model.classify([png, file], { topK: 5 });
    expect(top).toHaveLength(2);
    const px = await preprocessImages([png, file]);
    const z = (await (await model.forward(px)).data()) as Float32Array;
    top.forEach((rows, b) => {
      const zb = Array.from(z.subarray(b * 1000, (b + 1) * 1000));
      const m = Math.max(...zb), sum = zb.reduce((a, v) => a + Math.exp(v - m), 0);
      const order = zb.map((v, i) => [v, i]).sort((p, q) => q[0] - p[0]).slice(0, 5).map(([, i]) => i);
      expect(rows.map((r) => r.index)).toEqual(order);
      rows.forEach((r) => {
        expect(r.label).toBe(IMAGENET_CLASSES[r.index]);
        expect(r.probability).toBeCloseTo(Math.exp(zb[r.index] - m) / sum, 6);
      });
      for (let i = 1; i < rows.length; ++i) expect(rows[i].probability).toBeLessThanOrEqual(rows[i - 1].probability);
    });
    expect((await model.classify(png))[0]).toHaveLength(5);
    await expect(model.classify(png, { topK: 0 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(model.classify([])).rejects.toMatchObject({ code: 'E_ARG' });
  });

  test('label_names from config.json replace the ImageNet names', async () => {
    const s = { ...TINYNET, numClasses: 3 };
    const d = await ckpt(randomMambaOutWeights(s), s, { label_names: ['cat', 'dog', 'eel'] });
    const m = await loadClassifier(d);
    const [top] = await m.classify(await sharp({ create: { width: 40, height: 40, channels: 3, background: 'white' } }).png().toBuffer(), { topK: 10 });
    expect(top.map((r) => r.label).sort()).toEqual(['cat', 'dog', 'eel']);
    m.dispose();
  });

  test('a variant name alone gives its depths and dims (checked against the tensors)', async () => {
    const d = await ckpt(randomMambaOutWeights(TINYNET), TINYNET, { variant: 'femto', depths: undefined, dims: undefined });
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/stem\.conv1\.weight' has shape \[4, 3, 3, 3\], expected \[24, 3, 3, 3\]/) });
  });

  test('bad pixels: wrong channels, rank, dtype are coded errors with the shape', async () => {
    await expect(model.forward(Tensor.from(uniform(64 * 64 * 4), [1, 64, 64, 4]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringContaining('[1, 64, 64, 4]') });
    await expect(model.forward(Tensor.from(uniform(64 * 64 * 3), [64, 64, 3]))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(model.forward(Tensor.from(uniform(12), [1, 2, 2, 3], { dtype: 'bf16' }))).rejects.toMatchObject({ code: 'E_DTYPE' });
    await expect(model.forward(Tensor.from(uniform(0), [0, 4, 4, 3]))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(model.forward([1, 2, 3] as unknown as Tensor)).rejects.toMatchObject({ code: 'E_ARG' });
    if (hasGpu) await expect(model.forward(Tensor.from(uniform(48), [1, 4, 4, 3], { device: 'cuda' }))).rejects.toMatchObject({ code: 'E_DEVICE' });
  });

  test('unreadable / non-image files to classify are E_FORMAT naming the file', async () => {
    const bad = path.join(tmp, 'bad.png');
    fs.writeFileSync(bad, 'hello');
    await expect(model.classify([bad])).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining(bad) });
    await expect(model.classify([path.join(tmp, 'missing.jpg')])).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining('missing.jpg') });
  });
});

describe('bad checkpoints and configs are E_FORMAT naming file, tensor, expected and found', () => {
  const w = randomMambaOutWeights(TINYNET);
  const without = (name: string): Weights => Object.fromEntries(Object.entries(w).filter(([k]) => k !== name));

  test('missing tensor', async () => {
    const d = await ckpt(without('stages.2.blocks.1.fc2.bias'));
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/'stages\.2\.blocks\.1\.fc2\.bias' is missing \(expected \[24\]\)/) });
  });

  test('misshapen tensor', async () => {
    const d = path.join(tmp, 'misshapen');
    await writeMambaOutCheckpoint(d, TINYNET, w);
    const tensors = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, { dtype: 'F32' as const, shape: k === 'head.fc.weight' ? [128, 1000] : [v.length], data: v }]));
    // rewrite with one wrong shape (same element count)
    const shapes = await import('../../lib/io/mambaout-config').then((m) => new Map(m.expectedMambaOutTensors(TINYNET).map((t) => [t.name, t.shape])));
    for (const [k, t] of Object.entries(tensors)) if (k !== 'head.fc.weight') t.shape = shapes.get(k) ?? t.shape;
    await writeSafetensors(path.join(d, 'model.safetensors'), tensors);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/model\.safetensors: tensor 'head\.fc\.weight' has shape \[128, 1000\], expected \[1000, 128\]/) });
  });

  test('extra tensor', async () => {
    const d = await ckpt({ ...w, 'stages.3.blocks.1.fc1.weight': uniform(10) });
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/unexpected tensor 'stages\.3\.blocks\.1\.fc1\.weight'/) });
  });

  test('depths / dims / num_classes disagreeing with the tensors', async () => {
    const deeper = await ckpt(w, TINYNET, { depths: [1, 1, 3, 1] });
    await expect(loadModel(deeper)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/'stages\.2\.blocks\.2\.norm\.weight' is missing/) });
    const shallower = await ckpt(w, TINYNET, { depths: [1, 1, 1, 1] });
    await expect(loadModel(shallower)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/unexpected tensor 'stages\.2\.blocks\.1\./) });
    const wider = await ckpt(w, TINYNET, { dims: [8, 16, 32, 32] });
    await expect(loadModel(wider)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/'stages\.2\.downsample\.conv\.weight' has shape \[24, 16, 3, 3\], expected \[32, 16, 3, 3\]/) });
    const classes = await ckpt(w, TINYNET, { num_classes: 10 });
    await expect(loadModel(classes)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/head\.fc\.weight' has shape \[1000, 128\], expected \[10, 128\]/) });
  });

  test('a variant contradicting depths/dims, an unknown variant, malformed lists', async () => {
    await expect(loadModel(await ckpt(w, TINYNET, { variant: 'tiny' }))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/variant 'tiny' has depths \[3,3,9,3\].*config says depths \[1,1,2,1\]/) });
    await expect(loadModel(await ckpt(w, TINYNET, { variant: 'huge' }))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/unknown MambaOut variant "huge"/) });
    await expect(loadModel(await ckpt(w, TINYNET, { depths: [1, 1, 2] }))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/same length/) });
    await expect(loadModel(await ckpt(w, TINYNET, { num_classes: 0 }))).rejects.toMatchObject({ code: 'E_FORMAT' });
  });

  test("the original MambaOut repository's names get a message saying how to convert", async () => {
    const orig: Weights = { 'downsample_layers.0.0.weight': uniform(4 * 27), 'stages.0.0.fc1.weight': uniform(4) };
    const d = path.join(tmp, 'orig');
    fs.mkdirSync(d);
    await writeSafetensors(path.join(d, 'model.safetensors'), Object.fromEntries(Object.entries(orig).map(([k, v]) => [k, { dtype: 'F32' as const, shape: [v.length], data: v }])));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ model_type: 'mambaout', variant: 'femto' }));
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/original MambaOut repository.*checkpoint_filter_fn/) });
  });
});
