import { Tensor, emptyCache, memory, ops, setThreads, threads } from '../lib';
import { DEVICES } from './helpers/backends';
import { expectEqual } from './helpers/compare';
import { uniform } from './helpers/random';
import { roundBf16, roundF16 } from './helpers/ref';

describe.each(DEVICES)('Tensor on %s', (device) => {
  test('round trip f32, i32, u8; halves widen unless raw', async () => {
    const x = uniform(37);
    expectEqual(await Tensor.from(x, [37], { device }).data(), x, 'f32');
    const i = Int32Array.from([1, -2, 2147483647, -2147483648]);
    expectEqual(await Tensor.from(i, [2, 2], { device }).data(), i, 'i32');
    const u = Uint8Array.from([0, 255, 7]);
    expectEqual(await Tensor.from(u, [3], { device }).data(), u, 'u8');
    for (const [dt, round] of [['bf16', roundBf16], ['f16', roundF16]] as const) {
      const h = Tensor.from(x, [37], { dtype: dt, device });
      const wide = await h.data();
      expect(wide).toBeInstanceOf(Float32Array);
      expectEqual(wide, Float32Array.from(x, round), dt);
      const raw = await h.data({ raw: true });
      expect(raw).toBeInstanceOf(Uint16Array);
      expectEqual(await Tensor.from(raw as Uint16Array, [37], { dtype: dt, device }).data(), wide, `${dt} raw bits`);
    }
  });

  test('shape, size, nbytes, empty and scalar tensors', async () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], { device });
    expect([t.shape, t.size, t.nbytes, t.dtype, t.device]).toEqual([[2, 3], 6, 24, 'f32', device === 'cuda' ? 'cuda:0' : device]); // 'cuda' is named with its index
    const empty = Tensor.from(new Float32Array(0), [0, 4], { device });
    expect((await (await ops.silu(empty)).data()).length).toBe(0);
    expect(Array.from(await Tensor.from([3], [], { device }).data())).toEqual([3]);
  });

  test('to() copies across devices and back', async () => {
    const x = uniform(1001);
    const t = Tensor.from(x, [1001], { device });
    const there = await t.to(device === 'cpu' ? 'cpu' : 'cuda');
    const back = await there.to('cpu');
    expectEqual(await back.data(), x, 'to');
  });
});

describe('memory accounting', () => {
  test('dispose() and Symbol.dispose free at once', () => {
    const before = memory().cpu;
    const a = Tensor.from(new Float32Array(1000), [1000]);
    expect(memory().cpu.tensors).toBe(before.tensors + 1);
    expect(memory().cpu.bytes).toBeGreaterThanOrEqual(before.bytes + 4000);
    a.dispose();
    {
      using b = Tensor.from(new Float32Array(10), [10]);
      expect(b.disposed).toBe(false);
      expect(memory().cpu.tensors).toBe(before.tensors + 1);
    }
    expect(memory().cpu.tensors).toBe(before.tensors);
    expect(memory().cpu.bytes).toBe(before.bytes);
  });

  test('an op on a tensor disposed right after the call still sees its data', async () => {
    const x = uniform(100000);
    const t = Tensor.from(x, [100000]);
    const p = ops.mul(t, t);
    t.dispose(); // the queued op holds its own reference
    const y = await (await p).data();
    expect(y[99999]).toBeCloseTo(x[99999] * x[99999], 6);
  });
});

describe('thread pool', () => {
  test('setThreads resizes the pool and rejects bad sizes', async () => {
    const n = threads();
    setThreads(1);
    expect(threads()).toBe(1);
    const y = await ops.add(Tensor.from([1, 2], [2]), Tensor.from([3, 4], [2]));
    expectEqual(await y.data(), [4, 6], 'add with one thread');
    setThreads(n);
    expect(threads()).toBe(n);
    expect(() => setThreads(0)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => setThreads(2.5)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
  });
});

test('the host caching allocator reuses freed large blocks; emptyCache returns them', async () => {
  emptyCache();
  expect(memory().cpu.cachedBytes).toBe(0);
  const live0 = memory().cpu.bytes;
  const a = Tensor.from(new Float32Array(1 << 20), [1 << 20]); // 4 MiB
  const cached0 = memory().cpu.cachedBytes;
  a.dispose();
  expect(memory().cpu.cachedBytes).toBe(cached0 + (4 << 20)); // kept, not returned to the OS
  expect(memory().cpu.bytes).toBe(live0); // live accounting unchanged
  const b = Tensor.from(new Float32Array(1 << 20), [1 << 20]);
  expect(memory().cpu.cachedBytes).toBe(cached0); // the block was reused
  expect(Array.from((await b.data()).subarray(0, 3))).toEqual([0, 0, 0]); // and holds b's data
  b.dispose();
  emptyCache();
  expect(memory().cpu.cachedBytes).toBe(0);
});
