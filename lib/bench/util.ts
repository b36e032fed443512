// Small helpers shared by the benchmarks (mambakit bench, benchGatedBlock, scripts/).

/** The middle value (the upper middle for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Seconds one awaited call takes. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** n values uniform in [-scale, scale): random weights and inputs for timing. */
export function uniformArray(n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
}
