import { Tensor, ops } from '../../lib';
import type { SampleOptions } from '../../lib/ops';
import { addon, call } from '../../lib/native';
import { DEVICES, emulated } from '../helpers/backends';
import { expectEqual } from '../helpers/compare';
import { SEED, uniform } from '../helpers/random';

/** The filtered, renormalized distribution of one row in float64 (the definition in cpu/sample.h). */
function filteredRef(x: ArrayLike<number>, opts: SampleOptions, prev: number[] = []): Float64Array {
  const V = x.length;
  const pen = opts.repetitionPenalty ?? 1;
  const s = Float64Array.from(x);
  for (const t of new Set(prev)) if (t >= 0 && t < V) s[t] = x[t] > 0 ? x[t] / pen : x[t] * pen;
  const T = opts.temperature ?? 1;
  const z = s.map((v) => v / T);
  const m = Math.max(...z);
  const p = z.map((v) => Math.exp(v - m));
  const total = p.reduce((a, b) => a + b, 0);
  for (let i = 0; i < V; ++i) p[i] /= total;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  let n = V;
  if (opts.topK && opts.topK < V) n = opts.topK;
  if ((opts.topP ?? 1) < 1) {
    let mass = 0;
    for (let r = 0; r < n; ++r) mass += p[order[r]];
    let cum = 0;
    for (let r = 0; r < n; ++r) {
      cum += p[order[r]] / mass;
      if (cum >= opts.topP!) { n = r + 1; break; }
    }
  }
  const keep = new Set(order.slice(0, n));
  const pmax = p[order[0]];
  if (opts.minP) for (const i of [...keep]) if (p[i] < opts.minP * pmax) keep.delete(i);
  const q = new Float64Array(V);
  let kept = 0;
  for (const i of keep) kept += p[i];
  for (const i of keep) q[i] = p[i] / kept;
  return q;
}

function logSoftmax(x: ArrayLike<number>, i: number): number {
  const m = Math.max(...Array.from(x));
  let s = 0;
  for (let j = 0; j < x.length; ++j) s += Math.exp(x[j] - m);
  return x[i] - m - Math.log(s);
}

function expectRel(actual: number, expected: number, tol: number, what: string): void {
  if (!(Math.abs(actual - expected) <= tol * Math.max(Math.abs(expected), 1e-30)))
    throw new Error(`${what}: ${actual} vs expected ${expected} (rel tol ${tol}, seed ${SEED})`);
}

describe.each(DEVICES)('sample on %s', (device) => {
  const f32 = (x: ArrayLike<number>, shape: number[]) => Tensor.from(Float32Array.from(x), shape, { device });
  const i32 = (x: ArrayLike<number>, shape: number[]) => Tensor.from(Int32Array.from(x), shape, { device });
  const tile = (row: number[], B: number) => f32(Array.from({ length: B }, () => row).flat(), [B, row.length]);

  test('greedy = argmax (ties to the lower id), logprob = log-softmax at temperature 1', async () => {
    for (const [B, V] of [[1, 1], [5, 7], [3, 50280], [70, 1000]]) {
      const x = uniform(B * V, -5, 5);
      if (V > 4) { x[1] = 9; x[3] = 9; } // tie in row 0
      const { ids, logprobs } = await ops.sample(f32(x, [B, V]), { temperature: 0, topK: 3, seed: 7 });
      expect(ids.shape).toEqual([B]);
      expect(logprobs.shape).toEqual([B]);
      const got = await ids.data();
      const lp = await logprobs.data();
      const expected = new Int32Array(B);
      for (let r = 0; r < B; ++r) {
        const row = x.subarray(r * V, (r + 1) * V);
        let best = 0;
        for (let i = 1; i < V; ++i) if (row[i] > row[best]) best = i;
        expected[r] = best;
        expectRel(lp[r], logSoftmax(row, best), 1e-5, `greedy logprob row ${r}`);
      }
      expectEqual(got, expected, `greedy ${B}x${V}`);
    }
    // the penalty applies before greedy: token 0 (2.0 / 4 = 0.5) loses to token 1 (1.0)
    const { ids } = await ops.sample(f32([2, 1, -1], [1, 3]), { temperature: 0, repetitionPenalty: 4, prev: i32([0, -1], [1, 2]) });
    expectEqual(await ids.data(), [1], 'greedy with penalty');
  });

  test('a fixed seed reproduces, other seeds and steps differ', async () => {
    const B = 64, V = 1000;
    const logits = f32(uniform(B * V, -2, 2), [B, V]);
    const opts = { temperature: 1.1, topK: 100, topP: 0.95 };
    const a = await (await ops.sample(logits, { ...opts, seed: 42, step: 3 })).ids.data();
    const b = await (await ops.sample(logits, { ...opts, seed: 42, step: 3 })).ids.data();
    expectEqual(a, b, 'same seed');
    const c = await (await ops.sample(logits, { ...opts, seed: 43, step: 3 })).ids.data();
    const d = await (await ops.sample(logits, { ...opts, seed: 42, step: 4 })).ids.data();
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(a)).not.toEqual(Array.from(d));
  });

  const row = [1.2, 0.9, 0.3, -0.4, -1.1];
  const prevRow = [0, 3, -1, 0, 99];
  const cases: [string, SampleOptions, boolean][] = [
    ['temperature 0.7', { temperature: 0.7 }, false],
    ['top_k 2', { topK: 2 }, false],
    ['top_p 0.8', { topP: 0.8 }, false],
    ['min_p 0.3', { minP: 0.3 }, false],
    ['repetition penalty 1.5', { repetitionPenalty: 1.5 }, true],
    ['all filters', { temperature: 0.8, topK: 4, topP: 0.9, minP: 0.1, repetitionPenalty: 1.3 }, true],
  ];
  test.each(cases)('frequencies and logprobs match the filtered distribution: %s', async (_name, opts, withPrev) => {
    const N = emulated && device === 'cuda' ? 1000 : 4000, V = row.length;
    const q = filteredRef(row, opts, withPrev ? prevRow : []);
    const prev = withPrev ? i32(Array.from({ length: N }, () => prevRow).flat(), [N, prevRow.length]) : undefined;
    const { ids, logprobs } = await ops.sample(tile(row, N), { ...opts, prev, seed: 2024, step: 1 });
    const got = await ids.data();
    const lp = await logprobs.data();
    const counts = new Array<number>(V).fill(0);
    for (let r = 0; r < N; ++r) {
      const id = got[r];
      expect(id >= 0 && id < V && q[id] > 0).toBe(true);
      counts[id] += 1;
      expectRel(lp[r], Math.log(q[id]), 1e-5, `logprob of ${id}`);
    }
    for (let i = 0; i < V; ++i) {
      const se = Math.sqrt((q[i] * (1 - q[i])) / N);
      const f = counts[i] / N;
      if (!(Math.abs(f - q[i]) <= 4.5 * se + 1e-12))
        throw new Error(`token ${i}: frequency ${f} vs expected ${q[i]} (± ${se.toFixed(4)}) counts ${counts}`);
    }
  });

  test('large vocabulary: chosen ids are in the filtered set with the right logprob', async () => {
    const B = 6, V = 50280;
    const x = uniform(B * V, -6, 6);
    const prevIds = Array.from({ length: B * 16 }, (_, i) => (i * 7919) % V);
    for (const opts of [{ topK: 50 }, { topP: 0.3 }, { topK: 1000, topP: 0.5, minP: 0.02, temperature: 0.6 }, {}, { minP: 0.1, repetitionPenalty: 2 }] as SampleOptions[]) {
      const { ids, logprobs } = await ops.sample(f32(x, [B, V]), { ...opts, prev: i32(prevIds, [B, 16]), seed: 5, step: 9 });
      const got = await ids.data();
      const lp = await logprobs.data();
      for (let r = 0; r < B; ++r) {
        const q = filteredRef(x.subarray(r * V, (r + 1) * V), opts, prevIds.slice(r * 16, (r + 1) * 16));
        expect(q[got[r]]).toBeGreaterThan(0);
        expectRel(lp[r], Math.log(q[got[r]]), 1e-5, `${JSON.stringify(opts)} row ${r}`);
      }
    }
  });

  test('per-row keys: a batched draw equals each row drawn alone with its own (seed, step)', async () => {
    const B = 6, V = 300;
    const logits = uniform(B * V, -3, 3);
    const keys = Int32Array.from({ length: 2 * B }, (_, i) => (i % 2 === 0 ? 4000000000 - 77 * i : i * 3));
    const opts = { temperature: 1.3, topK: 50, topP: 0.9 };
    const batched = await ops.sample(Tensor.from(logits, [B, V], { device }), { ...opts, keys: Tensor.from(keys, [B, 2], { device }) });
    const ids = (await batched.ids.data()) as Int32Array;
    for (let b = 0; b < B; ++b) {
      const alone = await ops.sample(Tensor.from(logits.subarray(b * V, (b + 1) * V), [1, V], { device }),
        { ...opts, seed: keys[2 * b] >>> 0, step: keys[2 * b + 1] });
      expect((await alone.ids.data())[0]).toBe(ids[b]);
    }
    await expect(ops.sample(Tensor.from(logits, [B, V], { device }), { keys: Tensor.from(keys.subarray(0, 4), [2, 2], { device }) }))
      .rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/keys/) });
  });

  test('bad options and inputs', async () => {
    const x = f32(uniform(2 * 5), [2, 5]);
    for (const [opts, name] of [
      [{ temperature: -1 }, 'temperature'], [{ temperature: Infinity }, 'temperature'], [{ topK: 1.5 }, 'topK'],
      [{ topK: -1 }, 'topK'], [{ topP: 0 }, 'topP'], [{ topP: 1.5 }, 'topP'], [{ minP: -0.1 }, 'minP'],
      [{ minP: 2 }, 'minP'], [{ repetitionPenalty: 0 }, 'repetitionPenalty'], [{ seed: -1 }, 'seed'], [{ step: 0.5 }, 'step'],
    ] as [Record<string, number>, string][])
      await expect(ops.sample(x, opts)).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining(name) });
    // the native check, bypassing the TS validation
    for (const [attrs, name] of [
      [{ temperature: NaN }, 'temperature'], [{ top_k: 2.5 }, 'top_k'], [{ top_p: 0 }, 'top_p'],
      [{ min_p: 1.5 }, 'min_p'], [{ repetition_penalty: -2 }, 'repetition_penalty'],
    ] as [Record<string, number>, string][])
      await expect(Promise.resolve().then(() => call(() => addon.runOp('sample', [x.handle, null, null], attrs))))
        .rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining(name) });
    const h = Tensor.from(uniform(10), [2, 5], { dtype: 'f16', device });
    await expect(ops.sample(h)).rejects.toMatchObject({ code: 'E_DTYPE' });
    await expect(ops.sample(x, { prev: i32([1, 2, 3], [3, 1]) })).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/prev/) });
    await expect(ops.sample(x, { prev: f32([1, 2], [2, 1]) })).rejects.toMatchObject({ code: 'E_DTYPE' });
    await expect(ops.sample(f32(uniform(5), [5]))).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
