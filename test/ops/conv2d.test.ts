// conv2d (csrc/core/magvit.h: NHWC, HWIO weights, any kernel, stride and asymmetric zero padding, bias,
// fused residual) against torch Conv2d's definition in float64 (test/helpers/magvit-ref.ts), on every backend.
import { Tensor } from '../../lib';
import { oihwToHwio } from '../../lib/vision/repack';
import * as mops from '../../lib/vision/magvit-ops';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { conv2dRef } from '../helpers/magvit-ref';
import { uniform } from '../helpers/random';

type Case = [B: number, H: number, W: number, Ci: number, Co: number, K: number, stride: number, pads: [number, number, number, number]];
const CASES: Case[] = [
  [1, 1, 1, 3, 5, 1, 1, [0, 0, 0, 0]],
  [2, 7, 9, 3, 13, 3, 1, [1, 1, 1, 1]],      // conv_in / ResnetBlock convs, odd sizes
  [1, 12, 10, 19, 21, 3, 2, [0, 1, 0, 1]],   // Downsample: F.pad (0, 1, 0, 1), stride 2
  [1, 11, 7, 9, 17, 3, 2, [0, 1, 0, 1]],     // the same on odd sizes
  [3, 5, 11, 24, 48, 3, 1, [1, 1, 1, 1]],
  [1, 9, 8, 7, 33, 5, 2, [2, 1, 2, 2]],      // 5×5, asymmetric padding
  [1, 6, 7, 40, 9, 2, 1, [0, 1, 1, 0]],      // an even kernel
  [2, 9, 6, 13, 11, 1, 2, [0, 0, 0, 0]],     // 1×1, stride 2
];

describe.each(DEVICES)('conv2d on %s', (device) => {
  const T = (d: Float32Array, s: number[]): Tensor => Tensor.from(d, s, { device });

  test('against float64: kernel sizes, strides, paddings, bias, residual', async () => {
    for (const [B, H, W, Ci, Co, K, s, pads] of CASES) {
      const x = uniform(B * H * W * Ci, -2, 2), w = uniform(K * K * Ci * Co), b = uniform(Co);
      const [pt, pb, pl, pr] = pads;
      const Ho = Math.floor((H + pt + pb - K) / s) + 1, Wo = Math.floor((W + pl + pr - K) / s) + 1;
      const res = uniform(B * Ho * Wo * Co, -1, 1);
      const ref = conv2dRef({ d: Float64Array.from(x), B, H, W, C: Ci }, w, b, Co, K, K, s, pads).d;
      const wt = T(oihwToHwio(w, Co, Ci, K, K), [K, K, Ci, Co]);
      const opts = { stride: s, padTop: pt, padBottom: pb, padLeft: pl, padRight: pr };
      const y = await mops.conv2d(T(x, [B, H, W, Ci]), wt, T(b, [Co]), opts);
      expect(y.shape).toEqual([B, Ho, Wo, Co]);
      expectClose(await y.data(), ref, 1e-5, `conv ${[B, H, W, Ci, Co, K, s, pads]}`);
      const yr = await mops.conv2d(T(x, [B, H, W, Ci]), wt, undefined, { ...opts, residual: T(res, [B, Ho, Wo, Co]) });
      const refNoBias = conv2dRef({ d: Float64Array.from(x), B, H, W, C: Ci }, w, null, Co, K, K, s, pads).d;
      expectClose(await yr.data(), refNoBias.map((v, i) => v + res[i]), 1e-5, `conv + residual ${[B, H, W, Ci, Co, K, s, pads]}`);
    }
  });

  test('checks shapes and padding', async () => {
    const x = T(uniform(2 * 5 * 5 * 3), [2, 5, 5, 3]);
    await expect(mops.conv2d(x, T(uniform(9 * 4 * 8), [3, 3, 4, 8]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/conv2d.*Ci=3/) });
    await expect(mops.conv2d(x, T(uniform(27), [3, 3, 3, 1]), T(uniform(2), [2]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/bias/) });
    await expect(mops.conv2d(x, T(uniform(27), [3, 3, 3, 1]), undefined, { padding: 3 })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/padding/) });
    await expect(mops.conv2d(x, T(uniform(27), [3, 3, 3, 1]), undefined, { padding: 1, residual: T(uniform(5), [5]) })).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/residual/) });
    await expect(mops.conv2d(T(uniform(12), [1, 2, 2, 3]), T(uniform(27), [3, 3, 3, 1]))).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/empty output/) });
  });
});
