// Fresh random inputs for every run (the seed is printed on failure so a run can be replayed with
// MAMBAKIT_TEST_SEED).
const seed0 = process.env.MAMBAKIT_TEST_SEED ? Number(process.env.MAMBAKIT_TEST_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
let state = seed0 || 1;

export const SEED = seed0;

/** xorshift32 → uniform in [0, 1). */
export function rand(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
}

/** n values uniform in [lo, hi). */
export function uniform(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + (hi - lo) * rand();
  return a;
}

export function randInt(n: number, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; ++i) a[i] = Math.floor(rand() * hi);
  return a;
}
