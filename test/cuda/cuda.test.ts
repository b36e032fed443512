// CUDA-only behaviour: the GPU against the CPU oracle at model-sized shapes, the caching allocator,
// mixed-device errors. Runs only where a GPU is detected (npm run test:gpu requires one).
import { Tensor, emptyCache, memory, ops } from '../../lib';
import { hasGpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { uniform } from '../helpers/random';

const gpuDescribe = hasGpu ? describe : describe.skip;

gpuDescribe('CUDA against the CPU oracle', () => {
  test.each([
    [1, 2048, 768, 'bf16'], [8, 1536, 768, 'f16'], [512, 768, 768, 'bf16'], [333, 1000, 517, 'f32'], [1, 50280, 768, 'f32'],
  ] as const)('gemm M=%i N=%i K=%i with %s weights equals the CPU GEMM', async (M, N, K, wdt) => {
    const x = uniform(M * K);
    const w = uniform(N * K);
    const cpu = await ops.gemm(Tensor.from(x, [M, K]), Tensor.from(w, [N, K], { dtype: wdt }));
    const gpu = await ops.gemm(Tensor.from(x, [M, K], { device: 'cuda' }), Tensor.from(w, [N, K], { dtype: wdt, device: 'cuda' }));
    expect(gpu.device).toBe('cuda:0');
    // half weights: the GPU also rounds x to the half type for the tensor cores
    expectClose(await gpu.data(), await cpu.data(), wdt === 'f32' ? 2e-5 : 1e-2, `cuda gemm ${M}x${N}x${K} ${wdt}`);
  });

  test('a chain of ops on the GPU equals the same chain on the CPU', async () => {
    const [T, D, V] = [37, 256, 1000];
    const ids = new Int32Array(T).map((_, i) => (i * 7919) % V);
    const table = uniform(V * D);
    const w = uniform(D, 0.5, 1.5);
    const proj = uniform(V * D, -0.1, 0.1);
    async function chain(device: 'cpu' | 'cuda'): Promise<Float32Array> {
      const h = await ops.embedding(Tensor.from(ids, [T], { device }), Tensor.from(table, [V, D], { dtype: 'bf16', device }));
      const n = await ops.rmsnorm(h, Tensor.from(w, [D], { device }));
      const g = await ops.gelu(await ops.silu(n));
      const logits = await ops.gemm(g, Tensor.from(proj, [V, D], { device }));
      return (await (await ops.softmax(logits)).data()) as Float32Array;
    }
    expectClose(await chain('cuda'), await chain('cpu'), 1e-4, 'op chain');
  });
});

gpuDescribe('CUDA memory and devices', () => {
  test('the caching allocator reuses freed blocks and emptyCache returns them', async () => {
    emptyCache();
    const before = memory()['cuda:0'];
    const a = Tensor.from(new Float32Array(1 << 20), [1 << 20], { device: 'cuda' });
    expect(memory()['cuda:0'].tensors).toBe(before.tensors + 1);
    a.dispose();
    expect(memory()['cuda:0'].cachedBytes).toBeGreaterThanOrEqual(4 << 20);
    const b = Tensor.from(new Float32Array(1 << 20), [1 << 20], { device: 'cuda' });
    expect(memory()['cuda:0'].cachedBytes).toBe(before.cachedBytes); // the block was reused
    b.dispose();
    emptyCache();
    expect(memory()['cuda:0'].cachedBytes).toBe(0);
  });

  test('mixing devices in one op is E_DEVICE naming both tensors', async () => {
    const e = await ops.add(Tensor.from([1, 2], [2]), Tensor.from([1, 2], [2], { device: 'cuda' })).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'E_DEVICE', message: expect.stringMatching(/f32\[2\]@cpu and f32\[2\]@cuda:0/) });
  });

  test('token id out of range on the GPU is E_ARG', async () => {
    const e = await ops.embedding(Tensor.from(new Int32Array([3, 9]), [2], { device: 'cuda' }),
      Tensor.from(uniform(12), [4, 3], { device: 'cuda' })).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'E_ARG' });
  });
});

test('CUDA suites run exactly when a GPU is detected', () => {
  expect(typeof hasGpu).toBe('boolean');
});
