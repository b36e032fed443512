// Random arrays for timing runs (benchGatedBlock, mambakit bench): not seeded, not for tests that compare.

/** n values uniform in [-scale, scale): random weights and inputs for timing. */
export function uniformArray(n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
}
