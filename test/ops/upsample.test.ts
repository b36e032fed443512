// upsample2x (F.interpolate(scale_factor=2, mode="nearest"), NHWC) on every backend: exact.
import { Tensor } from '../../lib';
import * as mops from '../../lib/vision/magvit-ops';
import { DEVICES } from '../helpers/backends';
import { expectEqual } from '../helpers/compare';
import { upsampleRef } from '../helpers/magvit-ref';
import { uniform } from '../helpers/random';

describe.each(DEVICES)('upsample2x on %s', (device) => {
  test('equals nearest-neighbour interpolation', async () => {
    for (const [B, H, W, C] of [[1, 1, 1, 1], [2, 3, 5, 7], [1, 9, 4, 33]]) {
      const x = uniform(B * H * W * C, -3, 3);
      const y = await mops.upsample2x(Tensor.from(x, [B, H, W, C], { device }));
      expect(y.shape).toEqual([B, 2 * H, 2 * W, C]);
      expectEqual(await y.data(), upsampleRef({ d: Float64Array.from(x), B, H, W, C }).d, `up ${[B, H, W, C]}`);
    }
    await expect(mops.upsample2x(Tensor.from(uniform(6), [2, 3], { device }))).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
