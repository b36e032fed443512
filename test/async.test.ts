// Heavy work runs off the JS thread: timers keep firing while a large GEMM runs.
import { Tensor, ops } from '../lib';
import { uniform } from './helpers/random';

test('a timer keeps firing during a large GEMM', async () => {
  const [M, N, K] = [1024, 2048, 2048]; // ~8.6 GFLOP: tens of ms or more on any machine
  const x = Tensor.from(uniform(M * K), [M, K]);
  const w = Tensor.from(uniform(N * K), [N, K]);
  await ops.gemm(x, w); // warm-up (page faults, packing buffers)
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  const t0 = performance.now();
  const runs = [];
  for (let i = 0; i < 4; ++i) runs.push(ops.gemm(x, w));
  await Promise.all(runs);
  const ms = performance.now() - t0;
  clearInterval(timer);
  // A blocked loop would see ~0 ticks; a free one sees roughly one per ms (timers are coarse, so ask for a fraction).
  expect(ms).toBeGreaterThan(20);
  expect(ticks).toBeGreaterThan(ms / 10);
});
