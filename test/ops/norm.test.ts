import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { uniform } from '../helpers/random';
import { layernormRef, rmsnormRef } from '../helpers/ref';

const SHAPES: [number, number][] = [[1, 1], [1, 768], [3, 7], [5, 1000], [33, 2049], [300, 64]];

describe.each(DEVICES)('norms on %s', (device) => {
  test('rmsnorm against float64', async () => {
    for (const [rows, D] of SHAPES) {
      const x = uniform(rows * D, -3, 3);
      const w = uniform(D, 0.5, 1.5);
      const y = await ops.rmsnorm(Tensor.from(x, [rows, D], { device }), Tensor.from(w, [D], { device }), { eps: 1e-5 });
      expectClose(await y.data(), rmsnormRef(x, w, rows, D, 1e-5), 1e-5, `rmsnorm ${rows}x${D}`);
    }
  });

  test('rmsnorm with fused residual add returns the sum and the normalized sum', async () => {
    for (const [rows, D] of SHAPES) {
      const x = uniform(rows * D, -3, 3);
      const r = uniform(rows * D, -3, 3);
      const w = uniform(D, 0.5, 1.5);
      const { out, sum } = await ops.rmsnormResidual(
        Tensor.from(x, [rows, D], { device }), Tensor.from(r, [rows, D], { device }), Tensor.from(w, [D], { device }), { eps: 1e-6 });
      const s = Float64Array.from(x, (v, i) => v + r[i]);
      expectClose(await sum.data(), s, 1e-6, `residual sum ${rows}x${D}`);
      expectClose(await out.data(), rmsnormRef(s, w, rows, D, 1e-6), 1e-5, `rmsnorm+residual ${rows}x${D}`);
    }
  });

  test('layernorm against float64, with and without bias, offset inputs', async () => {
    for (const [rows, D] of SHAPES.filter(([, d]) => d > 1)) {
      const x = uniform(rows * D, 5, 9); // a large mean: a one-pass variance would lose digits
      const w = uniform(D);
      const b = uniform(D);
      for (const bias of [b, null]) {
        const y = await ops.layernorm(Tensor.from(x, [rows, D], { device }), Tensor.from(w, [D], { device }),
          bias ? Tensor.from(bias, [D], { device }) : undefined, { eps: 1e-6 });
        expectClose(await y.data(), layernormRef(x, w, bias, rows, D, 1e-6), 2e-5, `layernorm ${rows}x${D} bias=${!!bias}`);
      }
    }
  });
});
