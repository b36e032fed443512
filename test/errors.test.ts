// Every bad input is a coded error, never a crash.
import { MambakitError, Tensor, memory, ops } from '../lib';
import { hasGpu } from './helpers/backends';
import { uniform } from './helpers/random';

const f32 = (shape: number[]) => Tensor.from(uniform(shape.reduce((a, b) => a * b, 1)), shape);

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(MambakitError);
  expect((e as MambakitError).code).toBe(code);
  if (pattern) expect((e as MambakitError).message).toMatch(pattern);
}

describe('coded errors', () => {
  test('E_SHAPE: gemm K mismatch names the op and both shapes', async () => {
    await rejectsWith(ops.gemm(f32([2, 3]), f32([4, 5])), 'E_SHAPE', /gemm: x f32\[2, 3\]@cpu and w f32\[4, 5\]@cpu/);
  });

  test('E_SHAPE: bias length, broadcast mismatch, norm weight length', async () => {
    await rejectsWith(ops.gemm(f32([2, 3]), f32([4, 3]), f32([5])), 'E_SHAPE', /bias f32\[5\]/);
    await rejectsWith(ops.add(f32([2, 3]), f32([2])), 'E_SHAPE', /add: b f32\[2\]/);
    await rejectsWith(ops.rmsnorm(f32([2, 3]), f32([4])), 'E_SHAPE', /rmsnorm: w f32\[4\]/);
    await rejectsWith(ops.rmsnormResidual(f32([2, 3]), f32([3, 2]), f32([3])), 'E_SHAPE', /residual/);
    await rejectsWith(ops.layernorm(f32([2, 3]), f32([3]), f32([2])), 'E_SHAPE', /layernorm: b/);
  });

  test('E_SHAPE: data length disagrees with the shape; bad dims', () => {
    expect(() => Tensor.from(new Float32Array(5), [2, 3])).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(() => Tensor.from(new Float32Array(0), [-1])).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(() => Tensor.from(new Float32Array(1), [1.5])).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
  });

  test('E_DTYPE: wrong dtypes name the input', async () => {
    const ids = Tensor.from(new Int32Array([1, 2]), [2]);
    await rejectsWith(ops.gemm(f32([2, 3]), Tensor.from(new Int32Array(6), [2, 3])), 'E_DTYPE', /gemm: w must be f32\/f16\/bf16, got i32/);
    await rejectsWith(ops.silu(ids), 'E_DTYPE', /silu: x must be f32/);
    await rejectsWith(ops.embedding(f32([2]), f32([4, 3])), 'E_DTYPE', /embedding: ids/);
    await rejectsWith(ops.gemm(Tensor.from(uniform(6), [2, 3], { dtype: 'bf16' }), f32([4, 3])), 'E_DTYPE', /gemm: x/);
    expect(() => Tensor.from(new Uint16Array(2), [2])).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
    expect(() => Tensor.from(new Int32Array(2), [2], { dtype: 'bf16' })).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
  });

  test('E_ARG: token id out of range names the id; disposed tensors', async () => {
    await rejectsWith(ops.embedding(Tensor.from(new Int32Array([0, 7]), [2]), f32([4, 3])), 'E_ARG', /token id 7 at position 1 is outside \[0, 4\)/);
    const t = f32([2, 2]);
    t.dispose();
    t.dispose(); // twice is fine
    expect(t.disposed).toBe(true);
    await rejectsWith(ops.silu(t), 'E_ARG', /disposed/);
    await rejectsWith(t.data(), 'E_ARG', /disposed/);
  });

  test('E_OOM: an output that cannot be allocated (400 GB) names the size, and nothing leaks', async () => {
    const before = memory().cpu;
    // x [1e5, 1] · w [1e6, 1]ᵀ → y [1e5, 1e6] f32 = 4e11 bytes: small inputs, impossible output
    const x = Tensor.from(new Float32Array(1e5), [1e5, 1]);
    const w = Tensor.from(new Float32Array(1e6), [1e6, 1]);
    await rejectsWith(ops.gemm(x, w), 'E_OOM', /400000000000 bytes/);
    x.dispose();
    w.dispose();
    // ≤: earlier tests' dropped tensors may be finalized meanwhile
    expect(memory().cpu.tensors).toBeLessThanOrEqual(before.tensors);
  });

  test('E_DEVICE: a cuda tensor without a GPU, and a bad device name', async () => {
    if (!hasGpu) {
      expect(() => Tensor.from(uniform(4), [4], { device: 'cuda' })).toThrow(expect.objectContaining({ code: 'E_DEVICE' }));
      await rejectsWith(f32([4]).to('cuda'), 'E_DEVICE');
    } else {
      expect(() => Tensor.from(uniform(4), [4], { device: 'cuda:99' })).toThrow(expect.objectContaining({ code: 'E_DEVICE' }));
    }
    expect(() => Tensor.from(uniform(4), [4], { device: 'tpu' as 'cpu' })).toThrow(expect.objectContaining({ code: 'E_DEVICE' }));
  });
});
