// MambaOut's image kernels against float64 references, on every available backend: odd H/W, channel
// counts that are not multiples of 8, strided channel slices, and the shape/dtype checks.
import { Tensor } from '../../lib';
import * as vops from '../../lib/vision/ops';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { conv3x3s2Ref, dwconv7Ref, meanPoolRef } from '../helpers/mambaout-ref';
import { uniform } from '../helpers/random';
import { geluRef } from '../helpers/ref';

describe.each(DEVICES)('vision kernels on %s', (device) => {
  const T = (d: Float32Array, s: number[]): Tensor => Tensor.from(d, s, { device });

  test('conv3x3s2 against float64 (odd and even sizes, with and without bias)', async () => {
    for (const [B, H, W, Ci, Co] of [[1, 1, 1, 3, 5], [2, 7, 9, 3, 13], [1, 12, 10, 19, 21], [3, 15, 5, 24, 48]]) {
      const x = uniform(B * H * W * Ci, -2, 2), w = uniform(9 * Ci * Co), b = uniform(Co);
      for (const bias of [b, null]) {
        const y = await vops.conv3x3s2(T(x, [B, H, W, Ci]), T(w, [3, 3, Ci, Co]), bias ? T(bias, [Co]) : undefined);
        expect(y.shape).toEqual([B, Math.ceil(H / 2), Math.ceil(W / 2), Co]);
        expectClose(await y.data(), conv3x3s2Ref(x, w, bias, B, H, W, Ci, Co), 1e-5, `conv ${[B, H, W, Ci, Co]}`);
      }
    }
  });

  test('dwconv7 on a channel slice against float64', async () => {
    for (const [B, H, W, S, off, C] of [[1, 1, 1, 5, 0, 5], [2, 9, 7, 11, 4, 7], [1, 13, 17, 40, 27, 13], [1, 6, 3, 96, 48, 48]]) {
      const x = uniform(B * H * W * S, -2, 2), w = uniform(49 * C), b = uniform(C);
      for (const bias of [b, null]) {
        const y = await vops.dwconv7(T(x, [B, H, W, S]), T(w, [7, 7, C]), bias ? T(bias, [C]) : undefined, { offset: off });
        expect(y.shape).toEqual([B, H, W, C]);
        expectClose(await y.data(), dwconv7Ref(x, S, off, w, bias, B, H, W, C), 1e-5, `dwconv ${[B, H, W, S, off, C]}`);
      }
    }
  });

  test('gelu_gate against float64, gated and plain', async () => {
    // a narrow range (scale ~1) checks the core to a few ulps; far tails go to 0 and x
    const narrow = uniform(4099, -1, 1);
    expectClose(await (await vops.geluGate(T(narrow, [4099]))).data(), Float64Array.from(narrow, geluRef), 5e-7, 'gelu [-1, 1]');
    const tails = Float32Array.from([-40, -12, -9, -5.5, -3.7, 3.7, 5.5, 9, 12, 40, 0, -0.0]);
    const got = await (await vops.geluGate(T(tails, [tails.length]))).data();
    tails.forEach((v, i) => expect(Math.abs(got[i] - geluRef(v))).toBeLessThanOrEqual(2e-7 * Math.max(1, Math.abs(v))));
    for (const [rows, n] of [[1, 1], [7, 13], [33, 171]]) {
      const a = uniform(rows * n, -6, 6), b = uniform(rows * n, -2, 2);
      const g = await vops.geluGate(T(a, [rows, n]), T(b, [rows, n]));
      // (4e-6: one random value on [-6, 6] can land where gelu is ~1e-3 and a few f32 ulps of erfc show)
      expectClose(await g.data(), Float64Array.from(a, (v, i) => geluRef(v) * b[i]), 4e-6, `gate ${rows}x${n}`);
      const p = await vops.geluGate(T(a, [rows, n]));
      expectClose(await p.data(), Float64Array.from(a, (v) => geluRef(v)), 4e-6, `gelu ${rows}x${n}`);
    }
  });

  test('mean_pool against float64', async () => {
    for (const [B, H, W, C] of [[1, 1, 1, 3], [3, 7, 5, 29], [2, 14, 14, 288]]) {
      const x = uniform(B * H * W * C, -3, 3);
      const y = await vops.meanPool(T(x, [B, H, W, C]));
      expect(y.shape).toEqual([B, C]);
      expectClose(await y.data(), meanPoolRef(x, B, H * W, C), 1e-6, `pool ${[B, H, W, C]}`);
    }
  });

  test('bad shapes and dtypes are coded errors naming the op and shapes', async () => {
    const x = T(uniform(2 * 5 * 5 * 3), [2, 5, 5, 3]);
    await expect(vops.conv3x3s2(x, T(uniform(9 * 4 * 8), [3, 3, 4, 8]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/conv3x3s2.*Ci=3/) });
    await expect(vops.conv3x3s2(T(uniform(15), [5, 3]), T(uniform(27), [3, 3, 3, 1]))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(vops.conv3x3s2(x, T(uniform(27), [3, 3, 3, 1]), T(uniform(2), [2]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/bias/) });
    await expect(vops.dwconv7(x, T(uniform(49 * 2), [7, 7, 2]), undefined, { offset: 2 })).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/dwconv7/) });
    await expect(vops.dwconv7(x, T(uniform(25 * 3), [5, 5, 3]))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(vops.geluGate(T(uniform(6), [2, 3]), T(uniform(6), [3, 2]))).rejects.toMatchObject({ code: 'E_SHAPE' });
    const bf = Tensor.from(uniform(27), [3, 3, 3, 1], { device, dtype: 'bf16' });
    await expect(vops.conv3x3s2(x, bf)).rejects.toMatchObject({ code: 'E_DTYPE' });
    await expect(vops.meanPool(T(uniform(6), [2, 3]))).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
