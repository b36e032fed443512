// MambaOut against a float64 reference written in TS (test/helpers/mambaout-ref.ts): one gated block,
// reduced-depth femto-width models at small images, and a whole femto at 224; bf16 weights; parameter
// counts of the published variants.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, loadClassifier } from '../../lib';
import { MAMBAOUT_VARIANTS, gatedHidden, mambaOutParams } from '../../lib/io/mambaout-config';
import { GatedCNNBlock, GatedBlockWeights, benchGatedBlock } from '../../lib/vision/block';
import { DEVICES } from '../helpers/backends';
import { expectClose, maxRelError } from '../helpers/compare';
import { MambaOutShape, randomMambaOutWeights, writeMambaOutCheckpoint } from '../helpers/mambaout-ckpt';
import { gatedBlockRef, hwio, mambaoutRef } from '../helpers/mambaout-ref';
import { uniform } from '../helpers/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-mambaout-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const FEMTO_DIMS = MAMBAOUT_VARIANTS.femto.dims;
const SMALL: MambaOutShape = { depths: [1, 1, 2, 1], dims: FEMTO_DIMS, numClasses: 37 };

async function classifier(name: string, s: MambaOutShape, device: 'cpu' | 'cuda', dtype: 'f32' | 'bf16' = 'f32') {
  const dir = path.join(tmp, name);
  const w = randomMambaOutWeights(s);
  await writeMambaOutCheckpoint(dir, s, w);
  const model = await loadClassifier(dir, { device, dtype });
  return { w, model, dir };
}

test('parameter counts match the paper (femto 7.3M, kobe 9.1M, tiny 26.5M, small 48.5M, base 84.8M)', () => {
  const m = (v: string): number => Math.round(mambaOutParams({ ...MAMBAOUT_VARIANTS[v], numClasses: 1000 }) / 1e5) / 10;
  expect(m('femto')).toBe(7.3);
  expect(m('kobe')).toBe(9.1);
  expect(m('tiny')).toBe(26.5);
  expect(m('small')).toBe(48.5);
  expect(m('base')).toBe(84.8);
  expect([48, 96, 192, 288].map(gatedHidden)).toEqual([128, 256, 512, 768]);
});

describe.each(DEVICES)('MambaOut on %s', (device) => {
  test('one gated CNN block against float64 (odd H/W, C not a multiple of 8)', async () => {
    for (const [B, H, W, C] of [[1, 7, 5, 21], [2, 9, 11, 48]]) {
      const h = gatedHidden(C);
      const w: GatedBlockWeights = {
        'norm.weight': uniform(C, 0.8, 1.2), 'norm.bias': uniform(C, -0.1, 0.1),
        'fc1.weight': uniform(2 * h * C, -0.3, 0.3), 'fc1.bias': uniform(2 * h, -0.1, 0.1),
        'conv.weight': uniform(49 * C, -0.2, 0.2), 'conv.bias': uniform(C, -0.1, 0.1),
        'fc2.weight': uniform(C * h, -0.2, 0.2), 'fc2.bias': uniform(C, -0.1, 0.1),
      };
      const x = uniform(B * H * W * C, -2, 2);
      const block = GatedCNNBlock.create(C, w, { device });
      const y = await block.forward(Tensor.from(x, [B, H, W, C], { device }));
      expect(y.shape).toEqual([B, H, W, C]);
      const ref = gatedBlockRef(x, {
        normW: w['norm.weight'], normB: w['norm.bias'], fc1: w['fc1.weight'], fc1B: w['fc1.bias'],
        convW: hwio(w['conv.weight'], C, 1, 7), convB: w['conv.bias'], fc2: w['fc2.weight'], fc2B: w['fc2.bias'],
      }, B, H, W, C);
      expectClose(await y.data(), ref, 1e-5, `block ${[B, H, W, C]}`);
      block.dispose();
    }
  });

  test('reduced-depth femto-width model (odd image size, batch 2) against float64', async () => {
    const { w, model } = await classifier(`small-${device}`, SMALL, device);
    for (const [B, H, W] of [[2, 64, 64], [1, 45, 71]]) {
      const px = uniform(B * H * W * 3, -2, 2);
      const logits = await model.forward(Tensor.from(px, [B, H, W, 3], { device }));
      expect(logits.shape).toEqual([B, SMALL.numClasses]);
      expectClose(await logits.data(), mambaoutRef(w, SMALL, px, B, H, W), 1e-5, `model ${[B, H, W]}`);
    }
    model.dispose();
  });

  // 2e-2 as for the language models: over 7 runs of fresh random weights the error was 0.0064-0.0105
  // (bf16 weights, and x rounded to bf16 in the AVX512-BF16 GEMM), so 1e-2 failed now and then.
  test('bf16 weights stay within 2e-2 of the f32 model', async () => {
    const dir = path.join(tmp, `small-${device}`);
    const f32 = await loadClassifier(dir, { device });
    const bf16 = await loadClassifier(dir, { device, dtype: 'bf16' });
    expect(bf16.dtype).toBe('bf16');
    const px = Tensor.from(uniform(2 * 64 * 64 * 3, -2, 2), [2, 64, 64, 3], { device });
    const a = await (await f32.forward(px)).data(), b = await (await bf16.forward(px)).data();
    const e = maxRelError(b, a);
    expect(e).toBeLessThan(2e-2);
    expect(e).toBeGreaterThan(0); // the weights really were rounded
    f32.dispose();
    bf16.dispose();
  });

  test('whole femto at 224, batch 1, against float64', async () => {
    const femto: MambaOutShape = { ...MAMBAOUT_VARIANTS.femto, numClasses: 1000 };
    const { w, model } = await classifier(`femto-${device}`, femto, device);
    const px = uniform(224 * 224 * 3, -2, 2);
    const logits = await model.forward(Tensor.from(px, [1, 224, 224, 3], { device }));
    expectClose(await logits.data(), mambaoutRef(w, femto, px, 1, 224, 224), 1e-5, 'femto 224');
    model.dispose();
  }, 120000);
});

test('benchGatedBlock times a block on [B, H·W, C] tokens', async () => {
  const r = await benchGatedBlock({ batch: 1, height: 7, width: 9, channels: 48, reps: 2 });
  expect(r.seconds).toBeGreaterThan(0);
  expect(r.tokensPerSecond).toBeCloseTo(63 / r.seconds);
  const t = await benchGatedBlock({ batch: 2, tokens: 98, channels: 21, reps: 1 });
  expect([t.height, t.width]).toEqual([7, 14]);
  expect(t.tokensPerSecond).toBeCloseTo(196 / t.seconds);
  await expect(benchGatedBlock({ batch: 1, tokens: 0, channels: 8 })).rejects.toMatchObject({ code: 'E_ARG' });
});
