import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { randInt, uniform } from '../helpers/random';
import { softmaxRef } from '../helpers/ref';

describe.each(DEVICES)('embedding, softmax, argmax on %s', (device) => {
  test.each(['f32', 'f16', 'bf16'] as const)('embedding gathers %s rows widened to f32', async (dt) => {
    const [V, D] = [1001, 37];
    const table = Tensor.from(uniform(V * D), [V, D], { dtype: dt, device });
    const tv = await table.data();
    const ids = randInt(2 * 13, V);
    ids[0] = 0;
    ids[1] = V - 1;
    const y = await ops.embedding(Tensor.from(ids, [2, 13], { device }), table);
    expect(y.shape).toEqual([2, 13, D]);
    const expected = new Float32Array(ids.length * D);
    ids.forEach((id, i) => expected.set(tv.subarray(id * D, (id + 1) * D), i * D));
    expectEqual(await y.data(), expected, `embedding ${dt}`);
  });

  test('softmax against float64', async () => {
    for (const [rows, D] of [[1, 1], [3, 7], [4, 50280], [65, 129]]) {
      const x = uniform(rows * D, -20, 20);
      const y = await ops.softmax(Tensor.from(x, [rows, D], { device }));
      expectClose(await y.data(), softmaxRef(x, rows, D), 1e-5, `softmax ${rows}x${D}`);
    }
  });

  test('argmax: first index of the maximum, NaN wins', async () => {
    for (const [rows, D] of [[1, 1], [5, 7], [3, 50280], [40, 1000]]) {
      const x = uniform(rows * D);
      // plant a tie in row 0: two copies of the maximum; the lower index must win
      if (D > 4) { x[1] = 5; x[3] = 5; }
      const y = await ops.argmax(Tensor.from(x, [rows, D], { device }));
      expect(y.shape).toEqual([rows]);
      const expected = new Int32Array(rows);
      for (let r = 0; r < rows; ++r) {
        let best = 0;
        for (let i = 1; i < D; ++i) if (x[r * D + i] > x[r * D + best]) best = i;
        expected[r] = best;
      }
      expectEqual(await y.data(), expected, `argmax ${rows}x${D}`);
    }
    const withNaN = Float32Array.from([1, 9, NaN, 3, NaN]);
    expectEqual(await (await ops.argmax(Tensor.from(withNaN, [5], { device }))).data(), [2], 'argmax NaN');
  });
});
