import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { randInt, uniform } from '../helpers/random';
import { ActName, perRowGemmRef, routerRef } from '../helpers/sparse-ref';
import { gemmInputs } from '../helpers/ref';

const i32 = (a: ArrayLike<number>, shape: number[], device: 'cpu' | 'cuda') => Tensor.from(Int32Array.from(a), shape, { device });

describe.each(DEVICES)('sparse ops on %s', (device) => {
  test('router_topk: softmax + top-k against float64 for expert counts 1..256 and k 1..8', async () => {
    for (const [T, G] of [[1, 1], [5, 3], [130, 8], [33, 17], [7, 64], [19, 256]]) {
      for (const k of [1, 2, 3, 8].filter((k) => k <= G)) {
        for (const renorm of [false, true]) {
          const logits = uniform(T * G, -4, 4);
          const ref = routerRef(logits, T, G, k, renorm);
          const out = await ops.routerTopK(Tensor.from(logits, [T, G], { device }), k, { renormalize: renorm });
          expect(out.ids.shape).toEqual([T, k]);
          expectEqual(await out.ids.data(), ref.ids, `ids T=${T} G=${G} k=${k}`);
          expectClose(await out.weights.data(), ref.weights, 1e-5, `weights T=${T} G=${G} k=${k} renorm=${renorm}`);
          expectEqual(await out.counts.data(), ref.counts, `counts T=${T} G=${G} k=${k}`);
        }
      }
    }
  });

  test('router_topk: ties go to the lower expert index', async () => {
    const logits = Float32Array.from([1, 3, 3, 0, 3, /* row 2 */ 2, 2, 2, 2, 2]);
    const out = await ops.routerTopK(Tensor.from(logits, [2, 5], { device }), 3);
    expectEqual(await out.ids.data(), [1, 2, 4, 0, 1, 2], 'tied ids');
  });

  test('group_sort: offsets, stable source rows and positions; bad ids are E_ARG', async () => {
    for (const [rows, k, G] of [[1, 1, 1], [37, 1, 3], [64, 2, 8], [9, 4, 33], [300, 1, 2]]) {
      const gid = randInt(rows * k, G);
      const { offsets, src, pos } = await ops.groupSort(i32(gid, [rows, k], device), G);
      const off = await offsets.data(), s = await src.data(), p = await pos.data();
      const counts = new Array(G).fill(0);
      for (const g of gid) counts[g]++;
      const expectOff = [0];
      for (let g = 0; g < G; ++g) expectOff.push(expectOff[g] + counts[g]);
      expectEqual(off, expectOff, `offsets rows=${rows} k=${k} G=${G}`);
      for (let i = 0; i < rows * k; ++i) {
        expect(s[p[i]]).toBe(Math.floor(i / k)); // the pair's row sits at its position
        expect(p[i]).toBeGreaterThanOrEqual(off[gid[i]]); // ... inside its group
        expect(p[i]).toBeLessThan(off[gid[i] + 1]);
      }
      if (device === 'cpu') // stable: inside a group, pairs keep their input order
        for (let g = 0; g < G; ++g) for (let q = off[g] + 1; q < off[g + 1]; ++q) expect(s[q]).toBeGreaterThanOrEqual(s[q - 1]);
    }
    await expect(ops.groupSort(i32([0, 3, 1], [3], device), 3)).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.groupSort(i32([0, -1], [2], device), 3)).rejects.toMatchObject({ code: 'E_ARG' });
  });

  test.each(['f32', 'f16', 'bf16'] as const)('grouped_gemm (%s weights) against float64: gather, scatter, bias, activations, empty and one-row groups', async (wdt) => {
    const acts: ActName[] = ['none', 'relu', 'gelu', 'silu'];
    let i = 0;
    for (const [R, G, N, K] of [[1, 1, 5, 3], [1, 3, 37, 19], [6, 3, 64, 64], [16, 8, 100, 257], [40, 2, 33, 70], [130, 3, 129, 67], [9, 33, 17, 31], [65, 2, 40, 33], [128, 1, 16, 8]]) {
      const act = acts[i++ % acts.length];
      // group ids with empty groups (when G > 1) and, for R > G, some one-row groups
      const gid = Array.from(randInt(R, Math.max(1, G - 1)));
      const x = Tensor.from(uniform(R * K), [R, K], { device });
      const w = Tensor.from(uniform(G * N * K), [G, N, K], { dtype: wdt, device });
      const bias = Tensor.from(uniform(G * N), [G, N], { device });
      const wv = await w.data(), xv = await x.data(), bv = await bias.data();
      // the reference sees x as the kernels do (gemmInputs: bf16 on the CPU's AVX512-BF16 path, the half type on CUDA)
      const ref = perRowGemmRef(gemmInputs(xv, wdt, device), gid, wv, bv, R, N, K, act);
      const { offsets, src } = await ops.groupSort(i32(gid, [R], device), G);
      const tol = 2e-5;
      // token order in and out: gather rows by src, scatter results back by the same map
      const yTok = await ops.groupedGemm(x, w, offsets, { src, dst: src, bias, activation: act });
      expectClose(await yTok.data(), ref, tol, `token order ${wdt} R=${R} G=${G} N=${N} K=${K} ${act}`);
      // sorted order out: row p is token src[p]
      const ySorted = await ops.groupedGemm(x, w, offsets, { src, bias, activation: act });
      const sv = await src.data();
      const refSorted = new Float64Array(R * N);
      for (let p = 0; p < R; ++p) refSorted.set(ref.subarray(sv[p] * N, (sv[p] + 1) * N), p * N);
      expectClose(await ySorted.data(), refSorted, tol, `sorted order ${wdt} R=${R} G=${G}`);
    }
  });

  test('combine: weighted sum of each token\'s k rows in order', async () => {
    const [T, k, D] = [23, 3, 41];
    const gid = randInt(T * k, 5);
    const { pos } = await ops.groupSort(i32(gid, [T, k], device), 5);
    const y = uniform(T * k * D), wts = uniform(T * k, 0, 1);
    const out = await ops.combine(Tensor.from(y, [T * k, D], { device }), pos, Tensor.from(wts, [T, k], { device }));
    const p = await pos.data();
    const ref = new Float64Array(T * D);
    for (let t = 0; t < T; ++t) for (let j = 0; j < k; ++j) for (let d = 0; d < D; ++d) ref[t * D + d] += wts[t * k + j] * y[p[t * k + j] * D + d];
    expectClose(await out.data(), ref, 1e-5, 'combine');
  });

  test('bad input: coded errors naming the shapes', async () => {
    const x = Tensor.from(uniform(4 * 8), [4, 8], { device });
    const w = Tensor.from(uniform(2 * 3 * 8), [2, 3, 8], { device });
    await expect(ops.routerTopK(Tensor.from(uniform(6), [2, 3], { device }), 4)).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.groupedGemm(x, Tensor.from(uniform(24), [3, 8], { device }), i32([0, 4], [2], device))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(ops.groupedGemm(x, w, i32([0, 4], [2], device))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringContaining('offsets') });
    await expect(ops.groupedGemm(x, w, i32([0, 1, 3], [3], device))).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.groupedGemm(x, w, i32([0, 3, 2], [3], device))).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.groupedGemm(x, w, i32([0, 2, 4], [3], device), { src: i32([0, 1, 2, 9], [4], device) })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining('src') });
    await expect(ops.groupedGemm(x, w, i32([0, 2, 4], [3], device), { dst: i32([0, 1, 1, 2], [4], device) })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.groupedGemm(Tensor.from(uniform(4 * 7), [4, 7], { device }), w, i32([0, 2, 4], [3], device))).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(ops.combine(Tensor.from(uniform(8), [2, 4], { device }), i32([0, 5], [2, 1], device))).rejects.toMatchObject({ code: 'E_ARG' });
  });
});
