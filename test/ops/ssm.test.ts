// Causal conv1d and the fused selective scan against float64 references, awkward sizes: channels
// not a multiple of 8, state size 7, sequence lengths 1, 3, 2049, 5000.
import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { rand, uniform } from '../helpers/random';

const silu = (x: number): number => x / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

function convRef(x: Float32Array, w: Float32Array, bias: Float32Array | null, st: Float32Array | null, B: number, T: number, E: number, K: number, act: boolean) {
  const y = new Float64Array(B * T * E);
  const fin = new Float64Array(B * (K - 1) * E);
  for (let b = 0; b < B; ++b)
    for (let e = 0; e < E; ++e) {
      // the input history: K-1 window values (oldest first) then the T inputs
      const hist = [...Array.from({ length: K - 1 }, (_, j) => (st ? st[(b * (K - 1) + j) * E + e] : 0)), ...Array.from({ length: T }, (_, t) => x[(b * T + t) * E + e])];
      for (let t = 0; t < T; ++t) {
        let a = bias ? bias[e] : 0;
        for (let j = 0; j < K; ++j) a += w[e * K + j] * hist[t + j];
        y[(b * T + t) * E + e] = act ? silu(a) : a;
      }
      for (let j = 0; j < K - 1; ++j) fin[(b * (K - 1) + j) * E + e] = hist[T + j];
    }
  return { y, fin };
}

interface ScanIn { u: Float32Array; dt: Float32Array; A: Float32Array; Bm: Float32Array; Cm: Float32Array; D: Float32Array | null; z: Float32Array | null; dtb: Float32Array | null; st: Float32Array | null }

function scanRef(a: ScanIn, B: number, T: number, E: number, N: number) {
  const y = new Float64Array(B * T * E);
  const s = new Float64Array(B * N * E);
  if (a.st) s.set(a.st);
  for (let b = 0; b < B; ++b)
    for (let t = 0; t < T; ++t) {
      const r = b * T + t;
      for (let e = 0; e < E; ++e) {
        const d = softplus(a.dt[r * E + e] + (a.dtb ? a.dtb[e] : 0));
        const u = a.u[r * E + e];
        let acc = 0;
        for (let n = 0; n < N; ++n) {
          const i = (b * N + n) * E + e;
          s[i] = Math.exp(d * a.A[n * E + e]) * s[i] + d * a.Bm[r * N + n] * u;
          acc += a.Cm[r * N + n] * s[i];
        }
        let v = acc + (a.D ? a.D[e] * u : 0);
        if (a.z) v *= silu(a.z[r * E + e]);
        y[r * E + e] = v;
      }
    }
  return { y, s };
}

describe.each(DEVICES)('Mamba kernels on %s', (device) => {
  const f = (a: Float32Array, shape: number[]) => Tensor.from(a, shape, { device });

  test.each([
    [1, 1, 13, 4], [2, 3, 13, 4], [1, 2049, 100, 4], [3, 5, 17, 2], [1, 2, 8, 4], [2, 40, 33, 3], [1, 5000, 9, 4],
  ])('causal_conv1d B=%i T=%i E=%i K=%i, with and without initial window', async (B, T, E, K) => {
    const x = uniform(B * T * E), w = uniform(E * K), bias = uniform(E), st = uniform(B * (K - 1) * E);
    for (const withState of [false, true]) {
      const out = await ops.causalConv1d(f(x, [B, T, E]), f(w, [E, K]), { bias: f(bias, [E]), state: withState ? f(st, [B, K - 1, E]) : undefined });
      const ref = convRef(x, w, bias, withState ? st : null, B, T, E, K, true);
      expectClose(await out.y.data(), ref.y, 1e-5, `conv y state=${withState}`);
      expectClose(await out.state.data(), ref.fin, 0, `conv final window state=${withState}`);
    }
  });

  test.each([
    [1, 1, 13, 7], [2, 3, 13, 16], [1, 2049, 24, 16], [1, 5000, 9, 7], [3, 17, 100, 16], [2, 64, 40, 33], [1, 12, 20, 256],
  ])('selective_scan B=%i T=%i E=%i N=%i against float64', async (B, T, E, N) => {
    const a: ScanIn = {
      u: uniform(B * T * E), dt: uniform(B * T * E, -3, 1),
      // A = −exp(A_log) < 0, as in the models; ggml draws the same range
      A: Float32Array.from({ length: N * E }, () => -Math.exp(rand() * 2 - 1)),
      Bm: uniform(B * T * N), Cm: uniform(B * T * N), D: uniform(E), z: uniform(B * T * E), dtb: uniform(E, -1, 0), st: uniform(B * N * E),
    };
    for (const variant of ['full', 'bare'] as const) {
      const v = variant === 'full' ? a : { ...a, D: null, z: null, dtb: null, st: null };
      const opt = (x: Float32Array | null, shape: number[]) => (x ? f(x, shape) : undefined);
      const out = await ops.selectiveScan(f(v.u, [B, T, E]), f(v.dt, [B, T, E]), f(v.A, [N, E]), f(v.Bm, [B, T, N]), f(v.Cm, [B, T, N]),
        { D: opt(v.D, [E]), z: opt(v.z, [B, T, E]), dtBias: opt(v.dtb, [E]), state: opt(v.st, [B, N, E]) });
      const ref = scanRef(v, B, T, E, N);
      expectClose(await out.y.data(), ref.y, 2e-5, `scan y ${variant}`);
      expectClose(await out.state.data(), ref.s, 2e-5, `scan final state ${variant}`);
    }
  });

  test('bad shapes are E_SHAPE naming the input', async () => {
    const u = f(uniform(2 * 3 * 8), [2, 3, 8]);
    await expect(ops.selectiveScan(u, u, f(uniform(4 * 7), [4, 7]), f(uniform(24), [2, 3, 4]), f(uniform(24), [2, 3, 4])))
      .rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/selective_scan: A f32\[4, 7\]/) });
    await expect(ops.causalConv1d(u, f(uniform(8 * 9), [8, 9]))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/K in \[1, 8\]/) });
  });
});
