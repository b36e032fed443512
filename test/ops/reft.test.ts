// Representation editors (ops.reft, csrc/core/reft.h) against the float64 reference on fresh random inputs:
// C in {1, 7, 64, 773}, ranks 1/4/8, one or three editors, a random subset of rows in random order, both
// formulas, every activation, f32 and bf16 weights (the reference fed the bf16-rounded weights); W = R, b = 0
// with the identity is the identity bit for bit; a row's result does not depend on the other rows; every
// coded error.
import { MambakitError, Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { rand, randInt, uniform } from '../helpers/random';
import { REFT_ACTIVATIONS, REFT_FORMULAS, randomEditors, randomRows, reftRef } from '../helpers/reft-ref';

const CASES: [number, number, number][] = []; // [C, r, E]
for (const C of [1, 7, 64, 768 + 5]) for (const r of [1, 4, 8]) for (const E of [1, 3]) if (r <= C) CASES.push([C, r, E]);

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: MambakitError) => `${e.code}: ${e.message}`);

describe.each(DEVICES)('reft on %s', (device) => {
  const T = (a: Float32Array | Int32Array, shape: number[], dtype?: 'f32' | 'bf16' | 'i32'): Tensor => Tensor.from(a, shape, { device, dtype });

  test('against float64: every shape, formula, activation and weight dtype', async () => {
    for (const [C, r, E] of CASES) {
      const N = 3 + Math.floor(rand() * 10);
      const n = 1 + Math.floor(rand() * N);
      const rows = randomRows(n, N), editor = randInt(n, E);
      const h = uniform(N * C, -2, 2);
      for (const wdt of ['f32', 'bf16'] as const) {
        const w = randomEditors(E, r, C, wdt);
        const tensors = [T(h, [N, C]), T(rows, [n]), T(editor, [n]), T(w.R, [E, r, C], wdt), T(w.W, [E, r, C], wdt), T(w.b, [E, r])];
        for (const formula of REFT_FORMULAS)
          for (const activation of REFT_ACTIVATIONS) {
            const y = await ops.reft(tensors[0], tensors[1], tensors[2], tensors[3], tensors[4], tensors[5], { formula, activation });
            expect(y.shape).toEqual([N, C]);
            const got = (await y.data()) as Float32Array;
            y.dispose();
            const what = `C=${C} r=${r} E=${E} n=${n}/${N} ${wdt} ${formula} ${activation}`;
            expectClose(got, reftRef(h, N, C, rows, editor, w.R, w.W, w.b, E, r, formula, activation), 2e-5, what);
            for (let row = 0; row < N; ++row) // rows not edited are copied as they are
              if (!rows.includes(row)) expectEqual(got.subarray(row * C, (row + 1) * C), h.subarray(row * C, (row + 1) * C), `${what} row ${row}`);
          }
        tensors.forEach((t) => t.dispose());
      }
    }
  });

  test('W = R, b = 0, identity: the output is the input bit for bit (both formulas, both dtypes)', async () => {
    for (const [C, r, E] of [[7, 4, 3], [64, 8, 1], [773, 8, 3]]) {
      const N = 9, n = 6, rows = randomRows(n, N), editor = randInt(n, E), h = uniform(N * C, -3, 3);
      for (const wdt of ['f32', 'bf16'] as const) {
        const { R } = randomEditors(E, r, C, wdt);
        const tensors = [T(h, [N, C]), T(rows, [n]), T(editor, [n]), T(R, [E, r, C], wdt), T(R, [E, r, C], wdt), T(new Float32Array(E * r), [E, r])];
        for (const formula of REFT_FORMULAS) {
          const y = await ops.reft(tensors[0], tensors[1], tensors[2], tensors[3], tensors[4], tensors[5], { formula });
          expectEqual((await y.data()) as Float32Array, h, `identity C=${C} r=${r} ${wdt} ${formula}`);
          y.dispose();
        }
        tensors.forEach((t) => t.dispose());
      }
    }
  });

  test('a row edited alone equals the same row edited with others (bit for bit; C split into channel blocks)', async () => {
    const C = 2051, r = 8, E = 3, N = 6;
    const h = uniform(N * C, -2, 2), rows = randomRows(N, N), editor = randInt(N, E);
    const w = randomEditors(E, r, C, 'f32');
    const [th, tR, tW, tb] = [T(h, [N, C]), T(w.R, [E, r, C]), T(w.W, [E, r, C]), T(w.b, [E, r])];
    const opts = { formula: 'mrt', activation: 'silu' } as const;
    const all = await ops.reft(th, T(rows, [N]), T(editor, [N]), tR, tW, tb, opts);
    const together = (await all.data()) as Float32Array;
    expectClose(together, reftRef(h, N, C, rows, editor, w.R, w.W, w.b, E, r, 'mrt', 'silu'), 2e-5, 'all rows');
    for (let i = 0; i < N; ++i) {
      const one = await ops.reft(th, T(rows.subarray(i, i + 1), [1]), T(editor.subarray(i, i + 1), [1]), tR, tW, tb, opts);
      const row = rows[i];
      expectEqual(((await one.data()) as Float32Array).subarray(row * C, (row + 1) * C), together.subarray(row * C, (row + 1) * C), `row ${row} alone`);
      one.dispose();
    }
    [all, th, tR, tW, tb].forEach((t) => t.dispose());
  });

  test('bad inputs are coded errors naming the tensor and the shapes', async () => {
    const N = 4, C = 6, E = 2, r = 3;
    const h = T(uniform(N * C), [N, C]);
    const w = randomEditors(E, r, C, 'f32');
    const R = T(w.R, [E, r, C]), W = T(w.W, [E, r, C]), b = T(w.b, [E, r]);
    const rows = T(Int32Array.from([2, 0]), [2]), editor = T(Int32Array.from([1, 0]), [2]);
    const reft = (o: Partial<Record<'h' | 'rows' | 'editor' | 'R' | 'W' | 'b', Tensor>>, opts?: Parameters<typeof ops.reft>[6]): Promise<string> =>
      code(Promise.resolve().then(() => ops.reft(o.h ?? h, o.rows ?? rows, o.editor ?? editor, o.R ?? R, o.W ?? W, o.b ?? b, opts)));
    const ints = (v: number[]): Tensor => T(Int32Array.from(v), [v.length]);
    expect(await reft({})).toBe('no error');
    expect(await reft({ rows: ints([1, 4]) })).toMatch(/^E_ARG: reft: row 4 is outside \[0, 4\) or repeated/);
    expect(await reft({ rows: ints([-1, 0]) })).toMatch(/^E_ARG: reft: row -1 is outside/);
    expect(await reft({ rows: ints([3, 3]) })).toMatch(/^E_ARG: reft: row 3 is outside \[0, 4\) or repeated/);
    expect(await reft({ editor: ints([0, 2]) })).toMatch(/^E_ARG: reft: editor index 2 \(of row 0\) is outside \[0, 2\)/);
    expect(await reft({ editor: ints([0]) })).toMatch(/^E_SHAPE: reft: editor must be \[n=2\], got i32\[1\]/);
    expect(await reft({ rows: T(new Float32Array([0, 1]), [2]) })).toMatch(/^E_DTYPE: reft: rows must be i32 \[n\], got f32\[2\]/);
    expect(await reft({ h: T(uniform(N * 5), [N, 5]) })).toMatch(/^E_SHAPE: reft: R must be \[E, r, C=5\], got f32\[2, 3, 6\]/);
    expect(await reft({ h: T(uniform(C), [C]) })).toMatch(/^E_SHAPE: reft: h must have 2\.\.8 dims/);
    expect(await reft({ h: T(uniform(N * C), [N, C], 'bf16') })).toMatch(/^E_DTYPE: reft: h must be f32/);
    expect(await reft({ W: T(w.W, [E, r, C], 'bf16') })).toMatch(/^E_DTYPE: reft: W must be f32 \(R's dtype\), got bf16\[2, 3, 6\]/);
    expect(await reft({ R: Tensor.from(w.R, [E, r, C], { device, dtype: 'f16' }) })).toMatch(/^E_DTYPE: reft: R must be f32 or bf16, got f16/);
    expect(await reft({ W: T(w.W.subarray(0, r * C), [1, r, C]) })).toMatch(/^E_SHAPE: reft: W must be \[E=2, r=3, C=6\] \(R's shape\), got f32\[1, 3, 6\]/);
    expect(await reft({ b: T(w.b, [r, E]) })).toMatch(/^E_SHAPE: reft: b must be \[E=2, r=3\], got f32\[3, 2\]/);
    expect(await reft({ b: T(w.b, [E, r], 'bf16') })).toMatch(/^E_DTYPE: reft: b must be f32/);
    // rank above C (and above the kernels' 256)
    const wide = uniform(E * 7 * C);
    expect(await reft({ R: T(wide, [E, 7, C]), W: T(wide, [E, 7, C]), b: T(uniform(E * 7), [E, 7]) })).toMatch(/^E_SHAPE: reft: editors E=2, rank r=7, channels C=6 \(need E >= 1, 1 <= r <= min\(C, 256\)\)/);
    expect(await reft({ R: T(new Float32Array(0), [0, r, C]), W: T(new Float32Array(0), [0, r, C]), b: T(new Float32Array(0), [0, r]) })).toMatch(/^E_SHAPE: reft: editors E=0/);
    expect(await reft({}, { formula: 'loreft' as never })).toMatch(/^E_ARG: reft: formula must be 'pyreft' or 'mrt', got 'loreft'/);
    expect(await reft({}, { activation: 'sigmoid' as never })).toMatch(/^E_ARG: reft: activation must be 'identity', 'relu', 'gelu', 'silu' or 'tanh', got 'sigmoid'/);
    // no rows: a copy
    const none = await ops.reft(h, ints([]), ints([]), R, W, b);
    expectEqual((await none.data()) as Float32Array, (await h.data()) as Float32Array, 'no rows');
    [none, h, R, W, b, rows, editor].forEach((t) => t.dispose());
  });
});
