import { Tensor, info, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { uniform } from '../helpers/random';
import { gemmInputs, gemmRef } from '../helpers/ref';

// Shapes reach every path: GEMV rows (M ≤ 8), dot-product tiles (8 < M ≤ 48: N not a multiple of 3,
// M of 4), packed tiles with ragged edges, K not a multiple of 8.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 37, 19], [1, 768, 768], [2, 33, 70], [3, 65, 9], [4, 100, 257], [7, 129, 33], [8, 64, 64],
  [9, 17, 31], [12, 100, 257], [17, 45, 130], [33, 131, 67], [48, 47, 1000], [64, 96, 200], [97, 131, 67], [130, 257, 515], [513, 33, 2049],
];
const WDTYPES = ['f32', 'f16', 'bf16'] as const;

test('the CPU kernel path is the one asked for', () => {
  // the portable-path run (test/scalar-path.test.ts) sets MAMBAKIT_FORCE_SCALAR=1 for this file
  expect(info().cpuKernels).toBe(process.env.MAMBAKIT_FORCE_SCALAR === '1' || !/avx2/.test(info().cpuFeatures) ? 'portable' : 'avx2');
  const off = process.env.MAMBAKIT_FORCE_SCALAR === '1' || process.env.MAMBAKIT_NO_AVX512BF16 === '1';
  expect(info().bf16Gemm).toBe(!off && /avx512bf16/.test(info().cpuFeatures) ? 'avx512bf16' : 'f32');
});

describe.each(DEVICES)('gemm on %s', (device) => {
  test.each(WDTYPES)('x·Wᵀ with %s weights against float64, awkward shapes', async (wdt) => {
    for (const [M, N, K] of SHAPES) {
      for (const withBias of [false, true]) {
        const x = Tensor.from(uniform(M * K), [M, K], { device });
        const w = Tensor.from(uniform(N * K), [N, K], { dtype: wdt, device });
        const b = withBias ? Tensor.from(uniform(N), [N], { device }) : undefined;
        const y = await ops.gemm(x, w, b);
        expect(y.shape).toEqual([M, N]);
        expect(y.dtype).toBe('f32');
        // The reference sees the weights as stored (rounded to the half type), and x as the kernel
        // does (gemmInputs: rounded to bf16 on the CPU's AVX512-BF16 path, to the half type on CUDA).
        const xs = gemmInputs(await x.data(), wdt, device);
        const ref = gemmRef(xs, await w.data(), b ? await b.data() : null, M, N, K);
        const tol = 2e-5;
        expectClose(await y.data(), ref, tol, `gemm ${device} ${wdt} M=${M} N=${N} K=${K} bias=${withBias}`);
        for (const t of [x, w, b, y]) t?.dispose();
      }
    }
  });

  test('leading batch dims are flattened into rows', async () => {
    const x = Tensor.from(uniform(2 * 3 * 5), [2, 3, 5], { device });
    const w = Tensor.from(uniform(4 * 5), [4, 5], { device });
    const y = await ops.gemm(x, w);
    expect(y.shape).toEqual([2, 3, 4]);
    expectClose(await y.data(), gemmRef(await x.data(), await w.data(), null, 6, 4, 5), 2e-5, 'batched gemm');
  });
});
