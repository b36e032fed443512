import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { uniform } from '../helpers/random';
import { geluRef, roundBf16, roundF16, siluRef, softplusRef } from '../helpers/ref';

const SIZES = [1, 7, 1000, 70001];

describe.each(DEVICES)('elementwise on %s', (device) => {
  test('add and mul, same shape and broadcast suffix', async () => {
    for (const n of SIZES) {
      const a = uniform(n * 3);
      const b = uniform(n * 3);
      const s = uniform(3);
      const ta = Tensor.from(a, [n, 3], { device });
      const cases: [Tensor, (i: number) => number][] = [
        [Tensor.from(b, [n, 3], { device }), (i) => b[i]],
        [Tensor.from(s, [3], { device }), (i) => s[i % 3]],
      ];
      for (const [tb, bv] of cases) {
        const sum = await (await ops.add(ta, tb)).data();
        const prod = await (await ops.mul(ta, tb)).data();
        expectClose(sum, Float64Array.from(a, (v, i) => v + bv(i)), 1e-6, `add n=${n}`);
        expectClose(prod, Float64Array.from(a, (v, i) => v * bv(i)), 1e-6, `mul n=${n}`);
      }
    }
  });

  test.each([
    ['silu', ops.silu, siluRef],
    ['softplus', ops.softplus, softplusRef],
    ['gelu', ops.gelu, geluRef],
  ] as const)('%s against float64', async (name, op, ref) => {
    for (const n of SIZES) {
      // wide range so softplus's x > 20 branch and the tails of gelu/silu are reached
      const x = uniform(n, -30, 30);
      const y = await (await op(Tensor.from(x, [n], { device }))).data();
      const expected = Float64Array.from(x, ref);
      // elementwise relative error: these are pointwise functions, every element must be accurate
      for (let i = 0; i < n; ++i) {
        const e = Math.abs(y[i] - expected[i]) / Math.max(Math.abs(expected[i]), 1e-6);
        if (!(e < 2e-5)) throw new Error(`${name}(${x[i]}) = ${y[i]}, expected ${expected[i]}`);
      }
    }
  });

  test('cast f32 → bf16/f16 rounds to nearest even, and back exactly', async () => {
    const x = uniform(4097, -100, 100);
    x[0] = 1 + 2 ** -8; // a tie for bf16 (rounds to even: 1)
    x[1] = 1 + 3 * 2 ** -8; // a tie rounding up
    const t = Tensor.from(x, [x.length], { device });
    for (const [dt, round] of [['bf16', roundBf16], ['f16', roundF16]] as const) {
      const h = await ops.cast(t, dt);
      expect(h.dtype).toBe(dt);
      const back = await ops.cast(h, 'f32');
      expectEqual(await back.data(), Float32Array.from(x, round), `cast ${dt}`);
    }
  });
});
