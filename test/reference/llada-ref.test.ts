// Self-tests of the float64 LLaDA reference (test/helpers/llada-ref.ts) and of the random checkpoint
// writer (test/helpers/llada-ckpt.ts). Pure TypeScript: no native addon.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadTokenizer } from '../../lib/tokenizer';
import {
  FIXTURE_VOCAB, LladaShape, bf16BitsToF32, randomLladaWeights, refConfigOf, writeLladaCheckpoint,
} from '../helpers/llada-ckpt';
import {
  LladaRefConfig, PREFIX, RefCache, RefForward, RefForwardOptions, RefForwardResult, RefWeights, argmax, lladaForward,
  lladaTensorShapes, numTransferTokens, refForward, refGenerate, refGenerateFast, ropeInPlace, ropeInvFreq, softmax,
  softmaxAt, topk, truncateCache,
} from '../helpers/llada-ref';
import { maxRelError } from '../helpers/compare';
import { SEED, rand, randInt } from '../helpers/random';

/** max |a[offA + i] − b[offB + i]| over n values. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, offA = 0, offB = 0, n = a.length): number {
  let m = 0;
  for (let i = 0; i < n; ++i) {
    const d = Math.abs(a[offA + i] - b[offB + i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Rows [t0, t0 + n) of every batch row of logits [B, T, V], as [B, n, V]. */
function rows(logits: Float64Array, B: number, T: number, V: number, t0: number, n: number): Float64Array {
  const out = new Float64Array(B * n * V);
  for (let b = 0; b < B; ++b) out.set(logits.subarray((b * T + t0) * V, (b * T + t0 + n) * V), b * n * V);
  return out;
}

function slice2(ids: Int32Array, B: number, T: number, t0: number, n: number): Int32Array {
  const out = new Int32Array(B * n);
  for (let b = 0; b < B; ++b) out.set(ids.subarray(b * T + t0, b * T + t0 + n), b * n);
  return out;
}

/** A seeded xorshift32 uniform source, independent of the shared test rand. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const shapeA: LladaShape = { D: 32, H: 4, KVH: 2, L: 2, F: 48, V: 120, theta: 10000, maskId: 119, dtype: 'f32' };
const cfgA = refConfigOf(shapeA);
const wA = randomLladaWeights(shapeA);
const fA = lladaForward(wA, cfgA);

const shape1: LladaShape = { ...shapeA, L: 1 };
const cfg1 = refConfigOf(shape1);
const w1 = randomLladaWeights(shape1);
const f1 = lladaForward(w1, cfg1);

/** The forward with the mask id's logit at −inf (a trained LLaDA never samples [MASK]; a random model can). */
function noMask(f: RefForward, maskId: number): RefForward {
  return (ids, B, T, opts) => {
    const r = f(ids, B, T, opts);
    const V = r.logits.length / (B * T);
    for (let i = 0; i < B * T; ++i) r.logits[i * V + maskId] = -Infinity;
    return r;
  };
}

/** Random non-mask ids. */
const tokens = (n: number, V: number, maskId: number): Int32Array => randInt(n, V).map((t) => (t === maskId ? (t + 1) % V : t));

describe('numTransferTokens', () => {
  test('splits a block as get_num_transfer_tokens', () => {
    expect(numTransferTokens(32, 4)).toEqual([8, 8, 8, 8]);
    expect(numTransferTokens(10, 4)).toEqual([3, 3, 2, 2]);
    expect(numTransferTokens(3, 5)).toEqual([1, 1, 1, 0, 0]);
    expect(numTransferTokens(0, 3)).toEqual([0, 0, 0]);
    for (const [n, s] of [[7, 3], [128, 128], [1, 1], [100, 7]]) {
      const k = numTransferTokens(n, s);
      expect(k.reduce((a, b) => a + b, 0)).toBe(n);
      expect(Math.max(...k) - Math.min(...k)).toBeLessThanOrEqual(1);
    }
  });
});

describe('helpers', () => {
  test('argmax and topk pick the lowest index among ties; softmax sums to 1', () => {
    expect(argmax([1, 3, 3, 2], 0, 4)).toBe(1);
    expect(argmax([9, 1, 3, 3, 2], 1, 4)).toBe(1);
    expect(topk([0.5, 0.9, 0.5, 0.9, -Infinity, 0.1], 0, 6, 4)).toEqual([1, 3, 0, 2]);
    expect(topk([-Infinity, 0.2, -Infinity], 0, 3, 3)).toEqual([1, 0, 2]);
    const l = [1000, 999, 0, -5];
    const p = softmax(l, 0, 4);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    expect(softmaxAt(l, 0, 4, 1)).toBeCloseTo(1 / (1 + Math.E), 14);
    expect(Math.abs(p[1] - softmaxAt(l, 0, 4, 1))).toBeLessThan(1e-16);
  });
});

/**
 * The LLaDA forward for one sequence, re-derived independently and literally from Fast-dLLM's
 * modeling_llada.py (nested arrays; RoPE as positions = cat(freqs, freqs) and t·cos + rotate_half(t)·sin
 * with rotate_half(t) = cat(−t2, t1); K/V heads repeat_interleave'd).
 */
function naiveLogits(w: RefWeights, c: LladaRefConfig, ids: number[]): number[][] {
  const { D, H, KVH, L, eps } = c;
  const hd = D / H, half = hd / 2;
  const W = (n: string): Float32Array => w[PREFIX + n];
  const lin = (n: string, v: number[]): number[] => {
    const m = W(n), cols = v.length;
    return Array.from({ length: m.length / cols }, (_, o) => v.reduce((acc, x, i) => acc + x * m[o * cols + i], 0));
  };
  const rms = (v: number[], n: string): number[] => {
    const ms = v.reduce((acc, x) => acc + x * x, 0) / v.length;
    return v.map((x, i) => (x / Math.sqrt(ms + eps)) * W(n)[i]);
  };
  const rope = (v: number[], p: number): number[] => {
    const freqs = Array.from({ length: half }, (_, i) => p * (1 / Math.pow(c.theta, (2 * i) / hd)));
    const pos = [...freqs, ...freqs];
    const rh = [...v.slice(half).map((x) => -x), ...v.slice(0, half)];
    return v.map((x, i) => x * Math.cos(pos[i]) + rh[i] * Math.sin(pos[i]));
  };
  let xs = ids.map((id) => Array.from(W('wte.weight').subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < L; ++l) {
    const b = `blocks.${l}.`;
    const hs = xs.map((x) => rms(x, `${b}attn_norm.weight`));
    const qs = hs.map((h) => lin(`${b}q_proj.weight`, h));
    const ks = hs.map((h) => lin(`${b}k_proj.weight`, h));
    const vs = hs.map((h) => lin(`${b}v_proj.weight`, h));
    const att = xs.map((_, t) => {
      const o: number[] = [];
      for (let h = 0; h < H; ++h) {
        const g = Math.floor(h / (H / KVH));
        const q = rope(qs[t].slice(h * hd, (h + 1) * hd), t);
        const sc = ks.map((k, j) => rope(k.slice(g * hd, (g + 1) * hd), j).reduce((acc, kk, i) => acc + kk * q[i], 0) / Math.sqrt(hd));
        const mx = Math.max(...sc);
        const e = sc.map((v) => Math.exp(v - mx));
        const z = e.reduce((a2, b2) => a2 + b2, 0);
        for (let i = 0; i < hd; ++i) o.push(vs.reduce((acc, v, j) => acc + (e[j] / z) * v[g * hd + i], 0));
      }
      return o;
    });
    xs = xs.map((x, t) => {
      const a = lin(`${b}attn_out.weight`, att[t]);
      return x.map((v, i) => v + a[i]);
    });
    xs = xs.map((x) => {
      const h = rms(x, `${b}ff_norm.weight`);
      const gate = lin(`${b}ff_proj.weight`, h), up = lin(`${b}up_proj.weight`, h);
      const m = lin(`${b}ff_out.weight`, gate.map((v, i) => (v / (1 + Math.exp(-v))) * up[i]));
      return x.map((v, i) => v + m[i]);
    });
  }
  return xs.map((x) => {
    const h = rms(x, 'ln_f.weight');
    const logits = lin(c.tied ? 'wte.weight' : 'ff_out.weight', h);
    return c.scaleLogits ? logits.map((v) => v / Math.sqrt(D)) : logits;
  });
}

describe('refForward', () => {
  test.each([
    ['untied, GQA', { ...shapeA }],
    ['tied, scale_logits, MHA', { ...shapeA, KVH: 4, tied: true, scaleLogits: true, theta: 500000 }],
    ['MQA, 3 layers', { ...shapeA, H: 8, KVH: 1, L: 3, F: 40, eps: 1e-6 }],
  ] as [string, LladaShape][])('%s: equals a literal re-derivation of modeling_llada.py', (_label, s) => {
    const c = refConfigOf(s);
    const w = randomLladaWeights(s);
    const ids = Array.from(tokens(9, c.V, s.maskId));
    const want = naiveLogits(w, c, ids).flat();
    const got = refForward(w, c, Int32Array.from(ids), 1, ids.length).logits;
    expect(maxRelError(got, want)).toBeLessThanOrEqual(1e-12);
  });


  const { V, D } = cfgA;
  const B = 2, T = 24, q0 = 8, BL = 8;

  test('produces finite logits with a spread of a few units', () => {
    const ids = tokens(B * T, V, shapeA.maskId);
    const { logits } = fA(ids, B, T);
    let s = 0, ss = 0, gaps = 0;
    for (let r = 0; r < B * T; ++r) {
      const p = argmax(logits, r * V, V);
      let second = -Infinity;
      for (let i = 0; i < V; ++i) {
        const v = logits[r * V + i];
        expect(Number.isFinite(v)).toBe(true);
        s += v;
        ss += v * v;
        if (i !== p && v > second) second = v;
      }
      gaps += logits[r * V + p] - second;
    }
    const n = B * T * V;
    const std = Math.sqrt(ss / n - (s / n) ** 2);
    expect(std).toBeGreaterThan(1);
    expect(std).toBeLessThan(10);
    expect(gaps / (B * T)).toBeGreaterThan(0.05);
    // The mask token's zeroed head row gives a logit of exactly 0, below the best.
    for (let r = 0; r < B * T; ++r) expect(logits[r * V + shapeA.maskId]).toBe(0);
  });

  test('prefix and dual cache calls reproduce the full forward when nothing changed', () => {
    const ids = tokens(B * T, V, shapeA.maskId);
    for (const am of [undefined, Uint8Array.from({ length: B * T }, (_, i) => (i < 3 ? 0 : 1))]) {
      const full = fA(ids, B, T, { attentionMask: am });
      expect(full.cache.T).toBe(T);
      // Prefix cache: the cache cut to q0, query ids[:, q0:].
      const pre = fA(slice2(ids, B, T, q0, T - q0), B, T - q0, { cache: truncateCache(full.cache, q0), queryStart: q0, attentionMask: am });
      expect(maxDiff(pre.logits, rows(full.logits, B, T, V, q0, T - q0))).toBeLessThanOrEqual(1e-12);
      // The same with the full cache and queryStart (truncated inside).
      const pre2 = fA(slice2(ids, B, T, q0, T - q0), B, T - q0, { cache: full.cache, queryStart: q0, attentionMask: am });
      expect(maxDiff(pre2.logits, pre.logits)).toBe(0);
      // Dual cache: the block [q0, q0 + BL) replaced inside the full cache.
      const dual = fA(slice2(ids, B, T, q0, BL), B, BL, { cache: full.cache, queryStart: q0, replace: true, attentionMask: am });
      expect(maxDiff(dual.logits, rows(full.logits, B, T, V, q0, BL))).toBeLessThanOrEqual(1e-12);
      // Both return K/V of every position, equal to the full forward's.
      for (const c of [pre.cache, dual.cache]) {
        expect(c.T).toBe(T);
        for (let l = 0; l < cfgA.L; ++l) {
          expect(maxDiff(c.k[l], full.cache.k[l])).toBeLessThanOrEqual(1e-12);
          expect(maxDiff(c.v[l], full.cache.v[l])).toBeLessThanOrEqual(1e-12);
        }
      }
    }
  });

  test('after the block changes, cached calls differ from a fresh forward only through stale K/V', () => {
    const ids = tokens(B * T, V, shapeA.maskId);
    const ids2 = ids.slice();
    for (let b = 0; b < B; ++b) for (let t = q0; t < q0 + BL; ++t) ids2[b * T + t] = (ids[b * T + t] + 1 + Math.floor(rand() * (V - 2))) % (V - 1);
    const block2 = slice2(ids2, B, T, q0, BL);
    const tail2 = slice2(ids2, B, T, q0, T - q0);
    const kvd = (cfgA.KVH * D) / cfgA.H;
    for (const [f, L] of [[fA, 2], [f1, 1]] as const) {
      const stale = f(ids, B, T).cache;
      const fresh = f(ids2, B, T);
      const freshBlock = rows(fresh.logits, B, T, V, q0, BL);
      const dualStale = f(block2, B, BL, { cache: stale, queryStart: q0, replace: true }).logits;
      const dualFresh = f(block2, B, BL, { cache: fresh.cache, queryStart: q0, replace: true }).logits;
      const preStale = f(tail2, B, T - q0, { cache: stale, queryStart: q0 }).logits;
      // Refreshed K/V: the dual and prefix calls agree with the fresh forward.
      expect(maxDiff(dualFresh, freshBlock)).toBeLessThanOrEqual(1e-12);
      expect(maxDiff(f(tail2, B, T - q0, { cache: fresh.cache, queryStart: q0 }).logits, rows(fresh.logits, B, T, V, q0, T - q0))).toBeLessThanOrEqual(1e-12);
      // Layer-0 K/V depend only on token and position: outside the block they are never stale.
      for (let b = 0; b < B; ++b)
        for (const [t0, t1] of [[0, q0], [q0 + BL, T]]) expect(maxDiff(stale.k[0], fresh.cache.k[0], (b * T + t0) * kvd, (b * T + t0) * kvd, (t1 - t0) * kvd)).toBe(0);
      if (L === 1) {
        // One layer: nothing outside the block can go stale, so the cached calls are exact.
        expect(maxDiff(dualStale, freshBlock)).toBeLessThanOrEqual(1e-12);
        expect(maxDiff(preStale, rows(fresh.logits, B, T, V, q0, T - q0))).toBeLessThanOrEqual(1e-12);
      } else {
        // Two layers: layer-1 K/V of the prefix and suffix saw the old block (bidirectional attention).
        expect(maxDiff(dualStale, freshBlock)).toBeGreaterThan(1e-6);
        expect(maxDiff(preStale, rows(fresh.logits, B, T, V, q0, T - q0))).toBeGreaterThan(1e-6);
        // Refreshing only the suffix K/V is not enough: the prefix's layer-1 K/V are stale too.
        const spliced: RefCache = { B, T, k: stale.k.map((k) => k.slice()), v: stale.v.map((v) => v.slice()) };
        for (let l = 0; l < L; ++l)
          for (let b = 0; b < B; ++b) {
            const o = (b * T + q0 + BL) * kvd, n = (T - q0 - BL) * kvd;
            spliced.k[l].set(fresh.cache.k[l].subarray(o, o + n), o);
            spliced.v[l].set(fresh.cache.v[l].subarray(o, o + n), o);
          }
        const dualSpliced = f(block2, B, BL, { cache: spliced, queryStart: q0, replace: true }).logits;
        expect(maxDiff(dualSpliced, freshBlock)).toBeGreaterThan(1e-6);
        // ...and refreshing the prefix as well makes it exact.
        for (let l = 0; l < L; ++l)
          for (let b = 0; b < B; ++b) {
            const o = b * T * kvd, n = q0 * kvd;
            spliced.k[l].set(fresh.cache.k[l].subarray(o, o + n), o);
            spliced.v[l].set(fresh.cache.v[l].subarray(o, o + n), o);
          }
        expect(maxDiff(f(block2, B, BL, { cache: spliced, queryStart: q0, replace: true }).logits, freshBlock)).toBeLessThanOrEqual(1e-12);
      }
    }
  });

  test('rejects inconsistent cache arguments', () => {
    const ids = tokens(B * T, V, shapeA.maskId);
    const full = fA(ids, B, T);
    expect(() => fA(ids, B, T, { queryStart: 3 })).toThrow(/queryStart/);
    expect(() => fA(slice2(ids, B, T, 0, 4), B, 4, { cache: full.cache, replace: true })).toThrow(/queryStart/);
    expect(() => fA(slice2(ids, B, T, 0, 4), B, 4, { cache: full.cache, queryStart: T - 2, replace: true })).toThrow(/inside/);
    expect(() => fA(ids, B, T, { attentionMask: new Uint8Array(B * T - 1) })).toThrow(/attentionMask/);
  });
});

describe('RoPE', () => {
  const hd = 16, theta = 10000;
  const inv = ropeInvFreq(hd, theta);

  test('half-split rotation with angle pos·θ^(−2j/hd)', () => {
    for (const pos of [0, 1, 5, 123]) {
      for (let j = 0; j < hd; ++j) {
        const e = new Float64Array(hd);
        e[j] = 1;
        ropeInPlace(e, 0, hd, pos, inv);
        const i = j % (hd / 2);
        const a = pos * Math.pow(theta, (-2 * i) / hd);
        const [c, s] = [Math.cos(a), Math.sin(a)];
        const want = new Float64Array(hd);
        // rotate_half pairs j with j ± hd/2: (x1, x2) → (x1 c − x2 s, x2 c + x1 s).
        if (j < hd / 2) [want[j], want[j + hd / 2]] = [c, s];
        else [want[j - hd / 2], want[j]] = [-s, c];
        expect(maxDiff(e, want)).toBeLessThanOrEqual(1e-15);
      }
    }
  });

  test('q·k after rotation depends only on the position difference', () => {
    const q = Float64Array.from({ length: hd }, () => rand() * 2 - 1);
    const k = Float64Array.from({ length: hd }, () => rand() * 2 - 1);
    const dot = (pq: number, pk: number): number => {
      const a = q.slice(), b = k.slice();
      ropeInPlace(a, 0, hd, pq, inv);
      ropeInPlace(b, 0, hd, pk, inv);
      let s = 0;
      for (let i = 0; i < hd; ++i) s += a[i] * b[i];
      return s;
    };
    for (const [p1, p2] of [[0, 0], [3, 9], [17, 2], [40, 41]]) {
      const d0 = dot(p1, p2);
      for (const shift of [1, 7, 100, 1000, 4000]) expect(Math.abs(dot(p1 + shift, p2 + shift) - d0)).toBeLessThan(1e-9);
      expect(Math.abs(dot(p1, p2 + 1) - d0)).toBeGreaterThan(1e-6);
    }
    // A rotation keeps the norm.
    const a = q.slice();
    ropeInPlace(a, 0, hd, 77, inv);
    expect(Math.abs(Math.hypot(...a) - Math.hypot(...q))).toBeLessThan(1e-12);
  });
});

describe('GQA', () => {
  /** The same model with each K/V head copied into its query heads' slots (KVH = H). */
  function expand(w: RefWeights, c: LladaRefConfig, headOf: (h: number) => number): { w: RefWeights; c: LladaRefConfig } {
    const hd = c.D / c.H;
    const out: RefWeights = { ...w };
    for (let l = 0; l < c.L; ++l)
      for (const n of ['k_proj', 'v_proj']) {
        const name = `${PREFIX}blocks.${l}.${n}.weight`;
        const src = w[name];
        const dst = new Float32Array(c.H * hd * c.D);
        for (let h = 0; h < c.H; ++h) dst.set(src.subarray(headOf(h) * hd * c.D, (headOf(h) + 1) * hd * c.D), h * hd * c.D);
        out[name] = dst;
      }
    return { w: out, c: { ...c, KVH: c.H } };
  }

  test('grouped K/V heads equal their duplication into a KVH = H model', () => {
    const s: LladaShape = { ...shapeA, H: 8, KVH: 2 };
    const c = refConfigOf(s);
    const w = randomLladaWeights(s);
    const B = 2, T = 12;
    const ids = tokens(B * T, c.V, s.maskId);
    const ref = refForward(w, c, ids, B, T).logits;
    const g = c.H / c.KVH;
    const dup = expand(w, c, (h) => Math.floor(h / g)); // repeat_interleave
    expect(maxDiff(refForward(dup.w, dup.c, ids, B, T).logits, ref)).toBeLessThanOrEqual(1e-12);
    // Control: the other mapping (h mod KVH, i.e. torch .repeat) is a different model.
    const wrong = expand(w, c, (h) => h % c.KVH);
    expect(maxDiff(refForward(wrong.w, wrong.c, ids, B, T).logits, ref)).toBeGreaterThan(1e-6);
  });
});

describe('attention mask', () => {
  const { V } = cfgA;
  const pad = 5, n = 11, T = pad + n;

  test('pad ids do not reach the valid rows; padded rows equal the unpadded sequence', () => {
    const seq = tokens(n, V, shapeA.maskId);
    const ids = new Int32Array(2 * T);
    for (let b = 0; b < 2; ++b) {
      ids.set(tokens(pad, V, shapeA.maskId), b * T);
      ids.set(seq, b * T + pad);
    }
    const am = new Uint8Array(2 * T);
    for (let b = 0; b < 2; ++b) am.fill(1, b * T + pad, (b + 1) * T);
    const { logits } = fA(ids, 2, T, { attentionMask: am });
    const valid = (b: number): Float64Array => logits.subarray((b * T + pad) * V, (b + 1) * T * V);
    expect(maxDiff(valid(0), valid(1))).toBeLessThanOrEqual(1e-12);
    // Pad query rows attend to the valid keys: finite.
    for (let i = 0; i < pad * V; ++i) expect(Number.isFinite(logits[i])).toBe(true);
    // RoPE is relative, so the shifted positions give the unpadded sequence's logits.
    const alone = fA(seq, 1, n).logits;
    expect(maxDiff(valid(0), alone)).toBeLessThanOrEqual(1e-10);
    // Control: without the mask the pad ids change the valid rows.
    const open = fA(ids, 2, T).logits;
    expect(maxDiff(open.subarray(pad * V, T * V), open.subarray((T + pad) * V, 2 * T * V))).toBeGreaterThan(1e-6);
  });
});

// ---------------------------------------------------------------------------------------------------
// Samplers

interface Call {
  ids: Int32Array;
  B: number;
  T: number;
  opts?: RefForwardOptions;
}

function recording(f: RefForward): { calls: Call[]; fwd: RefForward } {
  const calls: Call[] = [];
  return {
    calls,
    fwd: (ids: Int32Array, B: number, T: number, opts?: RefForwardOptions): RefForwardResult => {
      calls.push({ ids: ids.slice(), B, T, opts });
      return f(ids, B, T, opts);
    },
  };
}

function masksIn(x: Int32Array, b: number, T: number, t0: number, t1: number, maskId: number): number {
  let c = 0;
  for (let t = t0; t < t1; ++t) if (x[b * T + t] === maskId) ++c;
  return c;
}

/** Length, prompt kept, no mask left, every generated id in range. */
function expectDone(x: Int32Array, prompt: Int32Array, B: number, P: number, G: number, maskId: number, V: number): void {
  const T = P + G;
  expect(x.length).toBe(B * T);
  for (let b = 0; b < B; ++b) {
    expect(Array.from(x.subarray(b * T, b * T + P))).toEqual(Array.from(prompt.subarray(b * P, (b + 1) * P)));
    for (let t = P; t < T; ++t) {
      expect(x[b * T + t]).not.toBe(maskId);
      expect(x[b * T + t] >= 0 && x[b * T + t] < V).toBe(true);
    }
  }
}

/** Generated part of row b. */
const gen = (x: Int32Array, b: number, P: number, G: number): number[] => Array.from(x.subarray(b * (P + G) + P, (b + 1) * (P + G)));

describe('refGenerate (LLaDA generate.py)', () => {
  const { V } = cfgA;
  const maskId = shapeA.maskId;
  const B = 2, P = 6, G = 16, BL = 8;
  const prompt = tokens(B * P, V, maskId);

  test.each([[8], [6], [20]])('steps %i: each step unmasks numTransferTokens inside the current block only', (steps) => {
    const { calls, fwd } = recording(fA);
    const r = refGenerate(fwd, prompt, B, P, { genLength: G, blockLength: BL, steps, maskId });
    expectDone(r.x, prompt, B, P, G, maskId, V);
    expect(r.nfe).toBe(steps);
    expect(calls.length).toBe(steps);
    const spb = steps / (G / BL);
    const nt = numTransferTokens(BL, spb);
    const T = P + G;
    for (let c = 0; c < calls.length; ++c) {
      const nb = Math.floor(c / spb), i = c % spb;
      const s0 = P + nb * BL, e0 = s0 + BL;
      const next = c + 1 < calls.length ? calls[c + 1].ids : r.x;
      for (let b = 0; b < B; ++b) {
        expect(masksIn(calls[c].ids, b, T, s0, e0, maskId) - masksIn(next, b, T, s0, e0, maskId)).toBe(nt[i]);
        expect(masksIn(next, b, T, e0, T, maskId)).toBe(T - e0); // later blocks untouched
        expect(masksIn(calls[c].ids, b, T, P, s0, maskId)).toBe(0); // earlier blocks done
      }
      expect(r.commits[c]).toEqual([nt[i], nt[i]]);
    }
  });

  test('random remasking and temperature > 0 keep the schedule and are reproducible from the rng', () => {
    for (const o of [{ remasking: 'random' as const, temperature: 0 }, { remasking: 'low_confidence' as const, temperature: 0.7 }, { remasking: 'random' as const, temperature: 1 }]) {
      const a = refGenerate(noMask(fA, maskId), prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, ...o, rng: xorshift(SEED + 1) });
      const b = refGenerate(noMask(fA, maskId), prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, ...o, rng: xorshift(SEED + 1) });
      expectDone(a.x, prompt, B, P, G, maskId, V);
      expect(Array.from(a.x)).toEqual(Array.from(b.x));
      for (const c of a.commits) expect(c).toEqual([2, 2]);
    }
  });

  test('left padding: a padded row generates what it generates alone', () => {
    const short = tokens(3, V, maskId), long = tokens(P, V, maskId);
    const padded = new Int32Array(2 * P);
    padded.set(tokens(P - 3, V, maskId), 0);
    padded.set(short, P - 3);
    padded.set(long, P);
    const am = Uint8Array.from({ length: 2 * P }, (_, i) => (i < P - 3 ? 0 : 1));
    const o = { genLength: G, blockLength: BL, steps: 8, maskId };
    const both = refGenerate(fA, padded, 2, P, { ...o, attentionMask: am });
    expectDone(both.x, padded, 2, P, G, maskId, V);
    expect(gen(both.x, 0, P, G)).toEqual(gen(refGenerate(fA, short, 1, 3, o).x, 0, 3, G));
    expect(gen(both.x, 1, P, G)).toEqual(gen(refGenerate(fA, long, 1, P, o).x, 0, P, G));
  });

  test('cfg: one forward over [x; un_x], un = prompt (pads included) masked, guided = un + (s+1)(cond − un)', () => {
    const am = Uint8Array.from({ length: B * P }, (_, i) => (i % P < 2 && i < P ? 0 : 1));
    const { calls, fwd } = recording(fA);
    const r = refGenerate(fwd, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, cfgScale: 1.5, attentionMask: am });
    expectDone(r.x, prompt, B, P, G, maskId, V);
    expect(calls.length).toBe(8);
    const T = P + G;
    for (const c of calls) {
      expect(c.B).toBe(2 * B);
      for (let b = 0; b < B; ++b)
        for (let t = 0; t < T; ++t) {
          expect(c.ids[(B + b) * T + t]).toBe(t < P ? maskId : c.ids[b * T + t]);
          const m = c.opts!.attentionMask!;
          expect(m[(B + b) * T + t]).toBe(m[b * T + t]);
          expect(m[b * T + t]).toBe(t < P ? am[b * P + t] : 1);
        }
    }
    // The guidance formula, on a fake model: cond prefers token 0 (1.0 vs 0.9), un has token 1 at 0;
    // guided with s = 1: token 0 → 1, token 1 → 0 + 2·0.9 = 1.8, so every position gets 1.
    const fake: RefForward = (ids, BB, TT) => {
      const logits = new Float64Array(BB * TT * V).fill(-5);
      for (let r2 = 0; r2 < BB * TT; ++r2) {
        const cond = r2 < (BB / 2) * TT;
        logits[r2 * V] = 1;
        logits[r2 * V + 1] = cond ? 0.9 : 0;
      }
      return { logits, cache: { B: BB, T: TT, k: [], v: [] } };
    };
    const g = refGenerate(fake, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, cfgScale: 1 });
    for (let b = 0; b < B; ++b) expect(gen(g.x, b, P, G)).toEqual(new Array(G).fill(1));
    const plain = refGenerate(fake, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId });
    for (let b = 0; b < B; ++b) expect(gen(plain.x, b, P, G)).toEqual(new Array(G).fill(0));
  });

  test('Gumbel-max: x0 = argmax exp(l) / (−log u)^T, noise drawn over [B, T, V] in order', () => {
    // V = 3, the mask id 2 at −inf; token 1 is twice as likely as token 0. u = (e^−1, e^−4, ½) at every
    // position: T = 1 gives (1, 2/4) → token 0; T = ¼ gives (1, 2/√2) → token 1.
    const fake: RefForward = (ids, BB, TT) => {
      const logits = new Float64Array(BB * TT * 3);
      for (let r2 = 0; r2 < BB * TT; ++r2) [logits[r2 * 3], logits[r2 * 3 + 1], logits[r2 * 3 + 2]] = [0, Math.log(2), -Infinity];
      return { logits, cache: { B: BB, T: TT, k: [], v: [] } };
    };
    const us = [Math.exp(-1), Math.exp(-4), 0.5];
    for (const [temperature, want] of [[1, 0], [0.25, 1], [0, 1]]) {
      let n = 0;
      const r = refGenerate(fake, Int32Array.of(0), 1, 1, { genLength: 2, blockLength: 2, steps: 2, maskId: 2, temperature, rng: () => us[n++ % 3] });
      expect(Array.from(r.x)).toEqual([0, want, want]);
      expect(n).toBe(temperature > 0 ? 2 * 3 * 3 : 0);
    }
  });

  test('a model that predicts the mask id leaves masks (as generate.py does)', () => {
    const fake: RefForward = (ids, BB, TT) => {
      const logits = new Float64Array(BB * TT * V);
      for (let r2 = 0; r2 < BB * TT; ++r2) logits[r2 * V + maskId] = 3;
      return { logits, cache: { B: BB, T: TT, k: [], v: [] } };
    };
    const r = refGenerate(fake, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId });
    expect(masksIn(r.x, 0, P + G, P, P + G, maskId)).toBe(G);
    expect(() => refGenerateFast(fake, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId })).toThrow(/masks after/);
    expect(() => refGenerateFast(fake, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, threshold: 0.9, cache: 'dual' })).toThrow(/no progress/);
  });
});

describe('refGenerateFast (Fast-dLLM generate.py)', () => {
  const { V } = cfgA;
  const maskId = shapeA.maskId;
  const B = 2, P = 5, G = 16, BL = 8, numBlocks = G / BL;
  const prompt = tokens(B * P, V, maskId);
  const am = Uint8Array.from({ length: B * P }, (_, i) => (i >= P && i < P + 2 ? 0 : 1)); // row 1 left-padded by 2

  test("cache 'none' equals LLaDA's generate (no cfg, T = 0)", () => {
    for (const steps of [8, 4, 16, 2]) {
      for (const mask of [undefined, am]) {
        const a = refGenerate(fA, prompt, B, P, { genLength: G, blockLength: BL, steps, maskId, attentionMask: mask });
        const f = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps, maskId, attentionMask: mask, cache: 'none' });
        expect(Array.from(f.x)).toEqual(Array.from(a.x));
        expect(f.nfe).toBe(steps);
        expect(f.commits).toEqual(a.commits);
      }
    }
    // More steps than masks: generate.py runs the empty steps, Fast-dLLM stops when the block is done.
    const a = refGenerate(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 24, maskId });
    const f = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 24, maskId });
    expect(Array.from(f.x)).toEqual(Array.from(a.x));
    expect(a.nfe).toBe(24);
    expect(f.nfe).toBe(G);
  });

  test('with one layer the prefix and dual caches are exact: same tokens as no cache', () => {
    const prompt1 = tokens(B * P, cfg1.V, maskId);
    for (const extra of [{ steps: 8 }, { steps: 4 }, { steps: 16, threshold: 0.5 }, { steps: 16, threshold: 1.0 }]) {
      const o = { genLength: G, blockLength: BL, maskId, attentionMask: am, ...extra };
      const none = refGenerateFast(f1, prompt1, B, P, { ...o, cache: 'none' });
      for (const cache of ['prefix', 'dual'] as const) {
        const r = refGenerateFast(f1, prompt1, B, P, { ...o, cache });
        expect(Array.from(r.x)).toEqual(Array.from(none.x));
        if (extra.threshold === undefined) expect(r.nfe).toBe(extra.steps);
      }
    }
  });

  test.each(['none', 'prefix', 'dual'] as const)("cache '%s': schedule, forward shapes and nfe", (cache) => {
    const { calls, fwd } = recording(fA);
    const steps = 8, spb = steps / numBlocks;
    const r = refGenerateFast(fwd, prompt, B, P, { genLength: G, blockLength: BL, steps, maskId, attentionMask: am, cache });
    expectDone(r.x, prompt, B, P, G, maskId, V);
    expect(r.nfe).toBe(steps);
    expect(calls.length).toBe(steps);
    const nt = numTransferTokens(BL, spb);
    const T = P + G;
    for (let c = 0; c < calls.length; ++c) {
      const nb = Math.floor(c / spb), i = c % spb, s0 = P + nb * BL;
      expect(r.commits[c]).toEqual([nt[i], nt[i]]);
      const call = calls[c];
      const first = i === 0 || cache === 'none';
      const expectT = first ? T : cache === 'prefix' ? T - s0 : BL;
      expect(call.T).toBe(expectT);
      expect(call.B).toBe(B);
      if (!first) {
        expect(call.opts!.queryStart).toBe(s0);
        expect(!!call.opts!.replace).toBe(cache === 'dual');
        // dual: the full K/V; prefix: the K/V cut to the block start.
        expect(call.opts!.cache!.T).toBe(cache === 'prefix' ? s0 : T);
      }
      expect(call.opts!.attentionMask!.length).toBe(B * T); // key length is always the whole sequence
    }
  });

  test('threshold: at least one commit per row per forward, bounded nfe; 1.0 is one token per step, 0 one forward per block', () => {
    for (const cache of ['none', 'prefix', 'dual'] as const) {
      for (const threshold of [0.2, 0.5, 0.9]) {
        const r = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, attentionMask: am, cache, threshold });
        expectDone(r.x, prompt, B, P, G, maskId, V);
        expect(r.nfe).toBeLessThanOrEqual(G);
        expect(r.nfe).toBeGreaterThanOrEqual(numBlocks);
        expect(r.commits.length).toBe(r.nfe);
        // Walk the forwards block by block: a row with masks left in the block commits ≥ 1, a finished
        // row commits nothing; a block that its full forward finished has no cached forward (Fast-dLLM
        // tests for a finished block before each cached step).
        let c = 0;
        for (let nb = 0; nb < numBlocks; ++nb) {
          const rem = [BL, BL];
          let calls = 0;
          while (rem.some((n) => n > 0)) {
            const got = r.commits[c++];
            ++calls;
            for (let b = 0; b < B; ++b) {
              if (rem[b] > 0) expect(got[b]).toBeGreaterThanOrEqual(1);
              else expect(got[b]).toBe(0);
              rem[b] -= got[b];
            }
          }
        }
        expect(c).toBe(r.commits.length);
      }
      // threshold 0: the whole block at its first forward, one forward per block.
      const z = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, cache, threshold: 0 });
      expectDone(z.x, prompt, B, P, G, maskId, V);
      expect(z.nfe).toBe(numBlocks);
    }
    // threshold 1.0 (no float64 probability reaches 1 here): only the best token per step, i.e.
    // LLaDA's generate with one token per step.
    const one = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, attentionMask: am, threshold: 1.0 });
    const llada = refGenerate(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: G, maskId, attentionMask: am });
    expect(Array.from(one.x)).toEqual(Array.from(llada.x));
    expect(one.nfe).toBe(G);
  });

  test('threshold keeps a confidence equal to it (≥), ties go to the lowest index', () => {
    // Two equally likely tokens: every confidence is exactly 0.5 and the argmax is token 0.
    const fake: RefForward = (ids, BB, TT) => {
      const logits = new Float64Array(BB * TT * 3);
      for (let r2 = 0; r2 < BB * TT; ++r2) [logits[r2 * 3], logits[r2 * 3 + 1], logits[r2 * 3 + 2]] = [0, 0, -Infinity];
      return { logits, cache: { B: BB, T: TT, k: [], v: [] } };
    };
    const o = { genLength: 4, blockLength: 4, steps: 4, maskId: 2 };
    const at = refGenerateFast(fake, Int32Array.of(1), 1, 1, { ...o, threshold: 0.5 });
    expect(Array.from(at.x)).toEqual([1, 0, 0, 0, 0]);
    expect(at.nfe).toBe(1);
    expect(at.commits).toEqual([[4]]);
    const above = refGenerateFast(fake, Int32Array.of(1), 1, 1, { ...o, threshold: 0.5000001 });
    expect(above.nfe).toBe(4);
    expect(above.commits).toEqual([[1], [1], [1], [1]]);
    // k-mode with equal confidences commits the lowest positions first.
    const { calls, fwd } = recording(fake);
    refGenerateFast(fwd, Int32Array.of(1), 1, 1, { ...o, steps: 2 });
    expect(Array.from(calls[1].ids)).toEqual([1, 0, 0, 2, 2]);
  });

  test('cached variants with two layers still finish; each block starts from an exact full forward', () => {
    const none = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId });
    const T = P + G;
    for (const cache of ['prefix', 'dual'] as const) {
      const { calls, fwd } = recording(fA);
      const r = refGenerateFast(fwd, prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, cache });
      expectDone(r.x, prompt, B, P, G, maskId, V);
      // Block 0 starts from prompt ⊕ masks with a full forward: the same step-0 decision as no cache.
      for (let b = 0; b < B; ++b)
        for (let t = 0; t < T; ++t) expect(calls[0].ids[b * T + t]).toBe(t < P ? prompt[b * P + t] : maskId);
      expect(calls[0].opts?.cache).toBeUndefined();
      expect(r.commits[0]).toEqual(none.commits[0]);
      // Block 1 starts with a full forward (no cache) over the whole x.
      const spb = 8 / numBlocks;
      expect(calls[spb].T).toBe(T);
      expect(calls[spb].opts?.cache).toBeUndefined();
    }
  });

  test('steps == number of blocks with a cache: the full forward fills the block and no cached forward follows', () => {
    for (const cache of ['prefix', 'dual'] as const) {
      const r = refGenerateFast(fA, prompt, B, P, { genLength: G, blockLength: BL, steps: numBlocks, maskId, cache });
      expectDone(r.x, prompt, B, P, G, maskId, V);
      expect(r.nfe).toBe(numBlocks);
      expect(r.commits).toEqual([[BL, BL], [BL, BL]]);
    }
  });

  test('left padding: a padded row generates what it generates alone (dual cache, threshold)', () => {
    const short = tokens(2, V, maskId), long = tokens(P, V, maskId);
    const padded = new Int32Array(2 * P);
    padded.set(tokens(P - 2, V, maskId), 0);
    padded.set(short, P - 2);
    padded.set(long, P);
    const mask = Uint8Array.from({ length: 2 * P }, (_, i) => (i < P - 2 ? 0 : 1));
    for (const extra of [{ cache: 'dual' as const }, { cache: 'dual' as const, threshold: 0.6 }, { cache: 'prefix' as const }]) {
      const o = { genLength: G, blockLength: BL, steps: 8, maskId, ...extra };
      const both = refGenerateFast(fA, padded, 2, P, { ...o, attentionMask: mask });
      expectDone(both.x, padded, 2, P, G, maskId, V);
      // Rows are independent: with a threshold a row that finished its block idles (commits nothing)
      // until the other row is done, which leaves its tokens as they would be alone.
      expect(gen(both.x, 0, P, G)).toEqual(gen(refGenerateFast(fA, short, 1, 2, o).x, 0, 2, G));
      expect(gen(both.x, 1, P, G)).toEqual(gen(refGenerateFast(fA, long, 1, P, o).x, 0, P, G));
    }
  });

  test('rng draws per forward: Gumbel noise [B, Tq, V] (twice in the prefix-cache loop), then [B, Tq] for random', () => {
    const T = P + G, spb = 8 / numBlocks;
    for (const cache of ['none', 'prefix', 'dual'] as const)
      for (const [temperature, remasking] of [[0, 'random'], [0.5, 'low_confidence'], [0.5, 'random']] as const) {
        let draws = 0;
        const rng = (): number => {
          ++draws;
          return 0.5 * rand() + 0.25;
        };
        refGenerateFast(noMask(fA, maskId), prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, cache, temperature, remasking, rng });
        let want = 0;
        for (let nb = 0; nb < numBlocks; ++nb) {
          const s0 = P + nb * BL;
          for (let i = 0; i < spb; ++i) {
            const Tq = i === 0 || cache === 'none' ? T : cache === 'prefix' ? T - s0 : BL;
            const gumbel = temperature > 0 ? B * Tq * V * (cache === 'prefix' && i > 0 ? 2 : 1) : 0;
            want += gumbel + (remasking === 'random' ? B * Tq : 0);
          }
        }
        expect(draws).toBe(want);
      }
    // LLaDA's generate: one forward over the whole sequence per step.
    let draws = 0;
    refGenerate(noMask(fA, maskId), prompt, B, P, { genLength: G, blockLength: BL, steps: 8, maskId, temperature: 0.5, remasking: 'random', rng: () => (++draws, 0.5) });
    expect(draws).toBe(8 * (B * T * V + B * T));
  });

  test('temperature and random remasking: reproducible from the rng, schedule kept', () => {
    for (const cache of ['none', 'prefix', 'dual'] as const) {
      const o = { genLength: G, blockLength: BL, steps: 8, maskId, cache, temperature: 0.8, remasking: 'random' as const };
      const a = refGenerateFast(noMask(fA, maskId), prompt, B, P, { ...o, rng: xorshift(SEED + 7) });
      const b = refGenerateFast(noMask(fA, maskId), prompt, B, P, { ...o, rng: xorshift(SEED + 7) });
      expectDone(a.x, prompt, B, P, G, maskId, V);
      expect(Array.from(a.x)).toEqual(Array.from(b.x));
      for (const c of a.commits) expect(c).toEqual([2, 2]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Checkpoint writer

/** Reads a safetensors file with the test's own parser: header entries and decoded float values. */
function readSafetensors(file: string): Map<string, { dtype: string; shape: number[]; values: Float32Array }> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; values: Float32Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    const copy = new Uint8Array(bytes);
    const values = e.dtype === 'BF16' ? Float32Array.from(new Uint16Array(copy.buffer), bf16BitsToF32) : new Float32Array(copy.buffer);
    out.set(name, { dtype: e.dtype, shape: e.shape, values });
  }
  return out;
}

describe('writeLladaCheckpoint', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-llada-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test.each([
    ['bf16', { D: 32, H: 4, KVH: 2, L: 2, F: 64, V: 300, vocabSize: 290, maskId: 288, dtype: 'bf16' } as LladaShape],
    ['f32 tied', { D: 32, H: 4, KVH: 4, L: 2, F: 48, V: 120, maskId: 100, dtype: 'f32', tied: true, scaleLogits: true, theta: 10000 } as LladaShape],
  ])('%s: config, sharded weights as returned, tokenizer', async (label, s) => {
    const dir = path.join(tmp, label.replace(/\s/g, '-'));
    const ck = await writeLladaCheckpoint(dir, s);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({
      model_type: 'llada', architectures: ['LLaDAModelLM'], d_model: s.D, n_heads: s.H, n_kv_heads: s.KVH, n_layers: s.L,
      mlp_hidden_size: s.F, vocab_size: s.vocabSize ?? s.V, embedding_size: s.V, rope: true, rope_theta: s.theta ?? 500000,
      rms_norm_eps: 1e-5, layer_norm_type: 'rms', block_type: 'llama', activation_type: 'silu', include_bias: false,
      include_qkv_bias: false, weight_tying: !!s.tied, scale_logits: !!s.scaleLogits, alibi: false, attention_layer_norm: false,
      input_emb_norm: false, block_group_size: 1, mask_token_id: s.maskId, pad_token_id: ck.eosId, eos_token_id: ck.eosId,
    });
    expect(ck.eosId).not.toBe(s.maskId);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const shapes = lladaTensorShapes(ck.config);
    expect(Object.keys(index.weight_map).sort()).toEqual(Object.keys(shapes).sort());
    expect(ck.shards.length).toBeGreaterThan(1);
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(ck.shards));
    expect(s.tied ? !(`${PREFIX}ff_out.weight` in shapes) : `${PREFIX}ff_out.weight` in shapes).toBe(true);
    for (const shard of ck.shards) {
      for (const [name, t] of readSafetensors(path.join(dir, shard))) {
        expect(index.weight_map[name]).toBe(shard);
        expect(t.dtype).toBe(s.dtype === 'bf16' ? 'BF16' : 'F32');
        expect(t.shape).toEqual(shapes[name]);
        expect(maxDiff(t.values, ck.weights[name])).toBe(0);
      }
    }
    // The returned values are bf16-representable for bf16 (low 16 bits zero).
    if (s.dtype === 'bf16')
      for (const v of Object.values(ck.weights)) expect(new Uint32Array(v.buffer, v.byteOffset, v.length).every((u) => (u & 0xffff) === 0)).toBe(true);
    // The reference runs on them.
    const { logits } = refForward(ck.weights, ck.config, tokens(10, s.vocabSize ?? s.V, s.maskId), 1, 10);
    expect(logits.every(Number.isFinite)).toBe(true);

    const tok = await loadTokenizer(dir);
    if (label === 'bf16') {
      expect(ck.tokenizer).toBe(true);
      expect(tok).not.toBeNull();
      expect(tok!.vocabSize).toBe(s.vocabSize);
      expect(tok!.eosTokenId).toBe(FIXTURE_VOCAB - 1);
      expect(ck.eosId).toBe(FIXTURE_VOCAB - 1);
      expect(tok!.decode([s.maskId])).toBe('<|mdm_mask|>');
      expect(tok!.decode(tok!.encode('hello world'))).toBe('hello world');
    } else {
      // V = 120 < the fixture's 266 ids: no tokenizer.json.
      expect(ck.tokenizer).toBe(false);
      expect(tok).toBeNull();
    }
  });
});
