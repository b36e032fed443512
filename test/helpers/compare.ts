// Comparison against float64 references: NaN/Inf first, then the largest error normalized by the
// reference's largest magnitude (so a tolerance is relative to the output's scale).
import { SEED } from './random';

export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != expected ${expected.length}`);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; ++i) {
    if (!Number.isFinite(actual[i]) && Number.isFinite(expected[i])) return Infinity;
    scale = Math.max(scale, Math.abs(expected[i]));
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
  }
  return err / Math.max(scale, 1e-30);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  const e = maxRelError(actual, expected);
  if (!(e <= tol)) throw new Error(`${what}: max relative error ${e.toExponential(3)} > ${tol} (seed ${SEED})`);
}

export function expectEqual(actual: ArrayLike<number>, expected: ArrayLike<number>, what = ''): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; ++i)
    if (actual[i] !== expected[i]) throw new Error(`${what}: [${i}] = ${actual[i]}, expected ${expected[i]} (seed ${SEED})`);
}
