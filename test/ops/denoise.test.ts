// The masked-diffusion step's per-position picks (denoise_pick) against a float64 transcription of the
// reference's decisions (ML-GSAI/LLaDA generate.py: Gumbel-max argmax, softmax confidence, guidance mix;
// random remasking), with the same counter-based draws (csrc/core/sample.h sample_uniform, in BigInt here).
import { MambakitError, Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { rand, uniform } from '../helpers/random';

const M64 = (1n << 64n) - 1n;
function mix64(z: bigint): bigint {
  z = (z + 0x9e3779b97f4a7c15n) & M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}
function uniformAt(seed: number, step: number, row: number): number {
  let h = mix64((BigInt(seed) << 32n) | BigInt(step));
  h = mix64(h ^ mix64(BigInt(row) ^ 0xd1b54a32d192ed03n));
  return Number(h >> 11n) / 9007199254740992;
}

interface PickRef { cfg: number; T: number; seed: number; step: number; random: boolean }

function pickRef(cond: Float32Array, uncond: Float32Array | null, rows: number[], V: number, o: PickRef) {
  return rows.map((r) => {
    const l = Float64Array.from({ length: V }, (_, v) => (uncond ? uncond[r * V + v] + (o.cfg + 1) * (cond[r * V + v] - uncond[r * V + v]) : cond[r * V + v]));
    let best = 0, bestScore = -Infinity, mx = -Infinity;
    for (let v = 0; v < V; ++v) {
      mx = Math.max(mx, l[v]);
      let score = l[v];
      if (o.T > 0) {
        const u = uniformAt(o.seed, o.step, r * V + v) || 2 ** -64;
        score = l[v] - o.T * Math.log(-Math.log(u));  // log domain of exp(l) / (−log u)^T
      }
      if (score > bestScore) bestScore = score, best = v;
    }
    if (o.random) return { x0: best, conf: uniformAt(o.seed, (o.step ^ 0x80000000) >>> 0, r) };
    let sum = 0;
    for (let v = 0; v < V; ++v) sum += Math.exp(l[v] - mx);
    return { x0: best, conf: Math.exp(l[best] - mx) / sum };
  });
}

describe.each(DEVICES)('denoise_pick on %s', (device) => {
  const f32 = (a: Float32Array, shape: number[]) => Tensor.from(a, shape, { device });
  const i32 = (a: number[]) => Tensor.from(Int32Array.from(a), [a.length], { device });

  test.each([
    ['argmax + confidence', 7, 300, { cfg: 0, T: 0, seed: 0, step: 0, random: false }, false],
    ['guided', 5, 1000, { cfg: 1.5, T: 0, seed: 0, step: 0, random: false }, true],
    ['Gumbel noise T = 0.7', 4, 513, { cfg: 0, T: 0.7, seed: 12345, step: 3, random: false }, false],
    ['guided, noisy, random remasking', 6, 64, { cfg: 0.5, T: 1, seed: 4000000000, step: 77, random: true }, true],
    ['a large vocabulary', 3, 32000, { cfg: 0, T: 0, seed: 0, step: 0, random: false }, false],
  ] as const)('%s (R=%i, V=%i)', async (_n, R, V, o, guided) => {
    const both = uniform((guided ? 2 : 1) * R * V, -4, 4);  // [cond; uncond] as the sampler batches them
    const cond = both.subarray(0, R * V), uncond = guided ? both.subarray(R * V) : null;
    cond[V + 3] = cond[V + 9] = 50;  // a tie in row 1: the lower index wins
    const rows = [...Array.from({ length: R }, (_, r) => R - 1 - r), 1, 0];  // any order, repeats allowed
    const seed = o.seed + Math.floor(rand() * 1000);
    const got = await ops.denoisePick(f32(both, [(guided ? 2 : 1) * R, V]), i32(rows), {
      uncondOffset: guided ? R : undefined, cfg: o.cfg, temperature: o.T, seed, step: o.step, random: o.random,
    });
    const ref = pickRef(cond, uncond, rows, V, { ...o, seed });
    expect(Array.from(got.x0)).toEqual(ref.map((r) => r.x0));
    for (let i = 0; i < rows.length; ++i) expect(Math.abs(got.conf[i] - ref[i].conf)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref[i].conf));
    if (!o.random && o.T === 0 && !guided) expect(got.x0[rows.indexOf(1)]).toBe(3);
  });

  test('a column slice of wider rows (MMaDA image codes), guided and noisy', async () => {
    const R = 3, W = 700, c0 = 450, K = 200;
    const both = uniform(2 * R * W, -4, 4);
    const sliced = new Float32Array(2 * R * K);
    for (let r = 0; r < 2 * R; ++r) sliced.set(both.subarray(r * W + c0, r * W + c0 + K), r * K);
    const rows = [2, 0, 1];
    const o = { cfg: 1.5, T: 1, seed: 99, step: 4, random: false };
    const got = await ops.denoisePick(f32(both, [2 * R, W]), i32(rows), { uncondOffset: R, cfg: o.cfg, temperature: o.T, seed: o.seed, step: o.step, columns: [c0, K] });
    const ref = pickRef(sliced.subarray(0, R * K), sliced.subarray(R * K), rows, K, o);
    expect(Array.from(got.x0)).toEqual(ref.map((r) => r.x0));
    for (let i = 0; i < rows.length; ++i) expect(Math.abs(got.conf[i] - ref[i].conf)).toBeLessThanOrEqual(1e-12);
    await expect(ops.denoisePick(f32(both, [2 * R, W]), i32(rows), { columns: [c0, K + 51] })).rejects.toMatchObject({ code: 'E_ARG' });
  });

  test('coded errors', async () => {
    const c = f32(uniform(20), [2, 10]);
    await expect(ops.denoisePick(c, i32([2]))).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.denoisePick(c, i32([1]), { uncondOffset: 1 })).rejects.toMatchObject({ code: 'E_ARG' });  // row 1 has no twin
    await expect(ops.denoisePick(c, i32([0]), { uncondOffset: 2 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.denoisePick(c, i32([0]), { temperature: -1 })).rejects.toBeInstanceOf(MambakitError);
    await expect(ops.denoisePick(c, i32([0]), { seed: 2 ** 32 })).rejects.toMatchObject({ code: 'E_ARG' });
  });
});
