// Bidirectional attention (grouped K/V heads, additive key bias, a K/V cache read through slots) and
// LLaDA's rotary embedding against float64 references: head dims 64, 128 and an odd one, sequence
// lengths 1, 3, 257, 2049, K/V in f32, bf16 and f16.
import { Tensor, ops } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { rand, uniform } from '../helpers/random';
import { roundBf16, roundF16 } from '../helpers/ref';

interface Case { B: number; Tq: number; Tk: number; H: number; KVH: number; hd: number }

/** o[b,t,h] = Σ_j softmax_j(scale q·k_j + bias_j) v_j in float64; rows with every key dropped are 0. */
function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, bias: Float32Array | null, slots: Int32Array | null, c: Case): Float64Array {
  const { B, Tq, Tk, H, KVH, hd } = c;
  const g = H / KVH, scale = 1 / Math.sqrt(hd);
  const o = new Float64Array(B * Tq * H * hd);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; ++b) {
    const slot = slots ? slots[b] : b;
    for (let t = 0; t < Tq; ++t)
      for (let h = 0; h < H; ++h) {
        const qo = ((b * Tq + t) * H + h) * hd, kh = Math.floor(h / g);
        let mx = -Infinity;
        for (let j = 0; j < Tk; ++j) {
          const ko = ((slot * Tk + j) * KVH + kh) * hd;
          let dot = 0;
          for (let d = 0; d < hd; ++d) dot += q[qo + d] * k[ko + d];
          s[j] = dot * scale + (bias ? bias[b * Tk + j] : 0);
          mx = Math.max(mx, s[j]);
        }
        if (mx === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < Tk; ++j) sum += (s[j] = Math.exp(s[j] - mx));
        for (let j = 0; j < Tk; ++j) {
          const p = s[j] / sum, vo = ((slot * Tk + j) * KVH + kh) * hd;
          for (let d = 0; d < hd; ++d) o[qo + d] += p * v[vo + d];
        }
      }
  }
  return o;
}

/** Left padding: the first pad[b] keys of row b dropped. */
function padBias(B: number, Tk: number, pad: number[]): Float32Array {
  const bias = new Float32Array(B * Tk);
  for (let b = 0; b < B; ++b) for (let j = 0; j < pad[b]; ++j) bias[b * Tk + j] = -Infinity;
  return bias;
}

describe.each(DEVICES)('attention on %s', (device) => {
  const f32 = (a: Float32Array, shape: number[]) => Tensor.from(a, shape, { device });

  const cases: [string, Case, boolean][] = [];
  for (const hd of [64, 128, 33])
    for (const T of [1, 3, 257, 2049])
      for (const [H, KVH] of [[2, 2], [4, 1]] as const) {
        // 2049: one ungrouped (hd 64) and one grouped, padded case (hd 128), batch 1, to keep the float64 reference affordable
        if (T === 2049 && !((hd === 64 && H === 2) || (hd === 128 && H === 4))) continue;
        const pad = T > 1 && H === 4;  // padding with the grouped cases
        const B = T === 2049 ? 1 : 2, h = T === 2049 && H === 4 ? 2 : H;
        cases.push([`hd=${hd} T=${T} H=${h} KVH=${KVH}${pad ? ' padded' : ''}`, { B, Tq: T, Tk: T, H: h, KVH, hd: hd }, pad]);
      }

  test.each(cases)('%s', async (_name, c, padded) => {
    const q = uniform(c.B * c.Tq * c.H * c.hd), k = uniform(c.B * c.Tk * c.KVH * c.hd), v = uniform(c.B * c.Tk * c.KVH * c.hd);
    for (let i = 0; i < q.length; ++i) q[i] *= 3;  // peaky softmax rows as well as flat ones
    const bias = padded ? padBias(c.B, c.Tk, [Math.floor(c.Tk / 3), 1].slice(0, c.B)) : null;
    const o = await ops.attention(f32(q, [c.B, c.Tq, c.H, c.hd]), f32(k, [c.B, c.Tk, c.KVH, c.hd]), f32(v, [c.B, c.Tk, c.KVH, c.hd]),
      { bias: bias ? f32(bias, [c.B, c.Tk]) : undefined });
    expect(o.shape).toEqual([c.B, c.Tq, c.H, c.hd]);
    expectClose(await o.data() as Float32Array, attentionRef(q, k, v, bias, null, c), 1e-5, 'attention');
  });

  test.each(['bf16', 'f16'] as const)('a %s K/V cache read through slots, fewer queries than keys, a row with every key dropped', async (dt) => {
    const c: Case = { B: 3, Tq: 5, Tk: 300, H: 6, KVH: 2, hd: 40 };
    const S = 4, slots = new Int32Array([2, 0, 3]);
    const q = uniform(c.B * c.Tq * c.H * c.hd), k = uniform(S * c.Tk * c.KVH * c.hd), v = uniform(S * c.Tk * c.KVH * c.hd);
    const round = dt === 'bf16' ? roundBf16 : roundF16;
    const bias = uniform(c.B * c.Tk, -2, 0);
    for (let j = 0; j < c.Tk; ++j) bias[2 * c.Tk + j] = -Infinity;  // row 2: nothing to attend to
    const kt = await ops.cast(f32(k, [S, c.Tk, c.KVH, c.hd]), dt), vt = await ops.cast(f32(v, [S, c.Tk, c.KVH, c.hd]), dt);
    const o = await ops.attention(f32(q, [c.B, c.Tq, c.H, c.hd]), kt, vt,
      { bias: f32(bias, [c.B, c.Tk]), slots: Tensor.from(slots, [c.B], { device }) });
    const ref = attentionRef(q, Float64Array.from(k, round), Float64Array.from(v, round), bias, slots, c);
    const got = await o.data() as Float32Array;
    expectClose(got, ref, 1e-5, `attention ${dt} cache`);
    expect(got.subarray(2 * c.Tq * c.H * c.hd).every((x) => x === 0)).toBe(true);
  });

  test('scale attribute and coded errors', async () => {
    const c: Case = { B: 1, Tq: 4, Tk: 7, H: 2, KVH: 1, hd: 8 };
    const q = uniform(c.Tq * c.H * c.hd), k = uniform(c.Tk * c.hd), v = uniform(c.Tk * c.hd);
    const o = await ops.attention(f32(q, [1, 4, 2, 8]), f32(k, [1, 7, 1, 8]), f32(v, [1, 7, 1, 8]), { scale: 0.5 });
    // scale 0.5 = 1/sqrt(4): the reference with q scaled by sqrt(8)/2
    const qs = Float64Array.from(q, (x) => (x * Math.sqrt(8)) / 2);
    expectClose(await o.data() as Float32Array, attentionRef(qs, k, v, null, null, c), 1e-5, 'scale');
    await expect(ops.attention(f32(q, [1, 4, 2, 8]), f32(uniform(7 * 3 * 8), [1, 7, 3, 8]), f32(uniform(7 * 3 * 8), [1, 7, 3, 8])))
      .rejects.toMatchObject({ code: 'E_ARG' });
    await expect(ops.attention(f32(q, [1, 4, 2, 8]), f32(k, [1, 7, 1, 8]), f32(uniform(6 * 8), [1, 6, 1, 8])))
      .rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(ops.attention(f32(q, [1, 4, 2, 8]), f32(k, [1, 7, 1, 8]), f32(v, [1, 7, 1, 8]), { bias: f32(uniform(6), [1, 6]) }))
      .rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(ops.attention(f32(q, [1, 4, 2, 8]), f32(k, [1, 7, 1, 8]), f32(v, [1, 7, 1, 8]), { slots: Tensor.from(new Int32Array([1]), [1], { device }) }))
      .rejects.toMatchObject({ code: 'E_ARG' });
  });
});

describe.each(DEVICES)('rope_kv on %s', (device) => {
  const f32 = (a: Float32Array, shape: number[]) => Tensor.from(a, shape, { device });

  // LLaDA's RotaryEmbedding (ML-GSAI/LLaDA, Fast-dLLM llada/model/modeling_llada.py): rotate_half splits the
  // head in halves; inv_freq_i = θ^(−2i/hd); angles in float64 here.
  function ropeRef(x: Float32Array, T: number, heads: number, hd: number, pos0: number, theta: number, B: number): Float64Array {
    const y = new Float64Array(x.length), half = hd / 2;
    for (let b = 0; b < B; ++b)
      for (let t = 0; t < T; ++t)
        for (let h = 0; h < heads; ++h) {
          const o = ((b * T + t) * heads + h) * hd;
          for (let i = 0; i < half; ++i) {
            const ang = (pos0 + t) * Math.pow(theta, (-2 * i) / hd), c = Math.cos(ang), s = Math.sin(ang);
            y[o + i] = x[o + i] * c - x[o + i + half] * s;
            y[o + i + half] = x[o + i + half] * c + x[o + i] * s;
          }
        }
    return y;
  }

  test.each([[64, 0, 3], [128, 4000, 5], [34, 17, 1]])('hd=%i pos0=%i T=%i, f32 and bf16 caches', async (hd, pos0, T) => {
    const B = 2, H = 4, KVH = 2, theta = 500000 * (0.5 + rand());
    const q = uniform(B * T * H * hd), k = uniform(B * T * KVH * hd), v = uniform(B * T * KVH * hd);
    for (const kvDtype of ['f32', 'bf16'] as const) {
      const r = await ops.ropeKv(f32(q, [B, T, H, hd]), f32(k, [B, T, KVH, hd]), f32(v, [B, T, KVH, hd]), { theta, pos0, kvDtype });
      expect(r.kCache.shape).toEqual([B, pos0 + T, KVH, hd]);
      expectClose(await r.q.data() as Float32Array, ropeRef(q, T, H, hd, pos0, theta, B), 1e-6, 'q');
      const kc = await (await ops.cast(r.kCache, "f32")).data() as Float32Array, vc = await (await ops.cast(r.vCache, "f32")).data() as Float32Array;
      const kref = ropeRef(k, T, KVH, hd, pos0, theta, B);
      const tol = kvDtype === 'f32' ? 1e-6 : 8e-3;
      const row = KVH * hd;
      for (let b = 0; b < B; ++b) {
        const at = (p: number) => (b * (pos0 + T) + p) * row;
        expect(kc.subarray(at(0), at(pos0)).every((x) => x === 0)).toBe(true);
        expectClose(kc.subarray(at(pos0), at(pos0 + T)), kref.subarray(b * T * row, (b + 1) * T * row), tol, `k ${kvDtype}`);
        expectClose(vc.subarray(at(pos0), at(pos0 + T)), v.subarray(b * T * row, (b + 1) * T * row), tol, `v ${kvDtype}`);
      }
    }
  });

  test('odd head dims are refused', async () => {
    await expect(ops.ropeKv(f32(uniform(9), [1, 1, 1, 9]), f32(uniform(9), [1, 1, 1, 9]), f32(uniform(9), [1, 1, 1, 9])))
      .rejects.toMatchObject({ code: 'E_ARG' });
  });
});
