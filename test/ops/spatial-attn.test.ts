// spatial_attn (AttnBlock's one-head attention over an image's H·W positions, head dim C: any C, unlike
// the transformer kernel's ≤ 256) against float64 on every backend.
import { Tensor } from '../../lib';
import * as mops from '../../lib/vision/magvit-ops';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { attentionRef } from '../helpers/magvit-ref';
import { uniform } from '../helpers/random';

describe.each(DEVICES)('spatial_attn on %s', (device) => {
  const T = (d: Float32Array, s: number[]): Tensor => Tensor.from(d, s, { device });

  test('against float64: positions and channels not multiples of the tiles, a head dim above 256', async () => {
    for (const [B, P, C] of [[1, 1, 3], [2, 7, 5], [1, 33, 17], [2, 70, 64], [1, 20, 300]]) {
      const q = uniform(B * P * C, -1, 1), k = uniform(B * P * C, -1, 1), v = uniform(B * P * C, -2, 2);
      const o = await mops.spatialAttention(T(q, [B, P, C]), T(k, [B, P, C]), T(v, [B, P, C]));
      expect(o.shape).toEqual([B, P, C]);
      expectClose(await o.data(), attentionRef(q, k, v, B, P, C, C ** -0.5), 1e-5, `attn ${[B, P, C]}`);
      // a 3× sharper softmax (scores of std ~1); much larger scores (e.g. scale 3 at C = 300: |s| ~ 60) make the
      // f32 rounding of the scores themselves show (~1e-5 relative), whatever the kernel
      const scale = 3 / Math.sqrt(C);
      const sharp = await mops.spatialAttention(T(q, [B, P, C]), T(k, [B, P, C]), T(v, [B, P, C]), { scale });
      expectClose(await sharp.data(), attentionRef(q, k, v, B, P, C, scale), 1e-5, `attn scale 3/√C ${[B, P, C]}`);
    }
  });

  test('checks shapes', async () => {
    const q = T(uniform(24), [2, 3, 4]);
    await expect(mops.spatialAttention(q, T(uniform(20), [1, 5, 4]), q)).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/k/) });
    await expect(mops.spatialAttention(T(uniform(4), [4]), q, q)).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
