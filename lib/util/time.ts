// Wall-clock timing of an awaited call (benchGatedBlock, mambakit bench, scripts/).

/** Seconds one awaited call takes. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
