// group_norm (torch.nn.GroupNorm over NHWC, biased variance, optional fused SiLU) against float64 on every backend.
import { Tensor } from '../../lib';
import * as mops from '../../lib/vision/magvit-ops';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { groupNormRef, siluRef } from '../helpers/magvit-ref';
import { uniform } from '../helpers/random';

describe.each(DEVICES)('group_norm on %s', (device) => {
  const T = (d: Float32Array, s: number[]): Tensor => Tensor.from(d, s, { device });

  test('against float64: group sizes, affine or not, SiLU, a large mean', async () => {
    for (const [B, H, W, C, G, offset] of [[1, 1, 1, 4, 2, 0], [2, 7, 9, 12, 3, 0], [1, 13, 5, 64, 32, 0], [3, 4, 4, 6, 6, 0], [1, 17, 19, 40, 4, 100], [2, 3, 5, 33, 1, -7]]) {
      const x = uniform(B * H * W * C, -2, 2).map((v) => v + offset), g = uniform(C, 0.5, 1.5), b = uniform(C, -0.5, 0.5);
      const xi = { d: Float64Array.from(x), B, H, W, C };
      for (const silu of [false, true]) {
        const ref = groupNormRef(xi, g, b, G, 1e-6);
        const y = await mops.groupNorm(T(x, [B, H, W, C]), T(g, [C]), T(b, [C]), { groups: G, silu });
        expect(y.shape).toEqual([B, H, W, C]);
        expectClose(await y.data(), silu ? siluRef(ref).d : ref.d, 1e-5, `gn ${[B, H, W, C, G, offset]} silu ${silu}`);
      }
      const plain = await mops.groupNorm(T(x, [B, H, W, C]), undefined, undefined, { groups: G, eps: 1e-3 });
      expectClose(await plain.data(), groupNormRef(xi, null, null, G, 1e-3).d, 1e-5, `gn plain ${[B, H, W, C, G]}`);
    }
  });

  test('checks groups and shapes', async () => {
    const x = T(uniform(2 * 3 * 3 * 6), [2, 3, 3, 6]);
    await expect(mops.groupNorm(x, undefined, undefined, { groups: 4 })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/6 channels.*4 groups/) });
    await expect(mops.groupNorm(x, T(uniform(5), [5]), undefined, { groups: 3 })).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/gamma/) });
    await expect(mops.groupNorm(T(uniform(6), [6]), undefined, undefined, { groups: 3 })).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
