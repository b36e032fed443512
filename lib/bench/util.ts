// Small helpers shared by the benchmarks (mambakit bench, scripts/). Timing and random inputs live in
// lib/util/ (time.ts, random.ts), where lib/vision/block.ts reaches them without importing lib/bench/.

/** The middle value (the upper middle for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
