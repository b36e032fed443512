// Float64 references of MambaOut (timm's mambaout.py written as plain loops over NHWC arrays), for
// the kernel, block and whole-model tests. Conv weights here are in the kernels' layout: dense
// [3, 3, Ci, Co], depthwise [7, 7, C].
import { geluRef, gemmRef, layernormRef } from './ref';

export const convS2Out = (n: number): number => Math.floor((n - 1) / 2) + 1;

export function conv3x3s2Ref(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null,
  B: number, H: number, W: number, Ci: number, Co: number): Float64Array {
  const Ho = convS2Out(H), Wo = convS2Out(W);
  const y = new Float64Array(B * Ho * Wo * Co);
  for (let b = 0; b < B; ++b)
    for (let i = 0; i < Ho; ++i)
      for (let j = 0; j < Wo; ++j)
        for (let o = 0; o < Co; ++o) {
          let s = bias ? bias[o] : 0;
          for (let ky = 0; ky < 3; ++ky)
            for (let kx = 0; kx < 3; ++kx) {
              const yy = 2 * i - 1 + ky, xx = 2 * j - 1 + kx;
              if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
              for (let c = 0; c < Ci; ++c) s += x[((b * H + yy) * W + xx) * Ci + c] * w[((ky * 3 + kx) * Ci + c) * Co + o];
            }
          y[((b * Ho + i) * Wo + j) * Co + o] = s;
        }
  return y;
}

/** The depthwise conv of channels [off, off + C) of x (S channels per pixel) → [B, H, W, C]. */
export function dwconv7Ref(x: ArrayLike<number>, S: number, off: number, w: ArrayLike<number>, bias: ArrayLike<number> | null,
  B: number, H: number, W: number, C: number): Float64Array {
  const y = new Float64Array(B * H * W * C);
  for (let b = 0; b < B; ++b)
    for (let i = 0; i < H; ++i)
      for (let j = 0; j < W; ++j)
        for (let c = 0; c < C; ++c) {
          let s = bias ? bias[c] : 0;
          for (let ky = 0; ky < 7; ++ky)
            for (let kx = 0; kx < 7; ++kx) {
              const yy = i + ky - 3, xx = j + kx - 3;
              if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
              s += x[((b * H + yy) * W + xx) * S + off + c] * w[(ky * 7 + kx) * C + c];
            }
          y[((b * H + i) * W + j) * C + c] = s;
        }
  return y;
}

export function meanPoolRef(x: ArrayLike<number>, B: number, P: number, C: number): Float64Array {
  const y = new Float64Array(B * C);
  for (let b = 0; b < B; ++b)
    for (let p = 0; p < P; ++p) for (let c = 0; c < C; ++c) y[b * C + c] += x[(b * P + p) * C + c] / P;
  return y;
}

export const hiddenOf = (C: number): number => Math.floor((8 / 3) * C);
const EPS = 1e-6;

export interface BlockRef {
  normW: ArrayLike<number>; normB: ArrayLike<number>;
  fc1: ArrayLike<number>; fc1B: ArrayLike<number>; // [2h, C], [2h]
  convW: ArrayLike<number>; convB: ArrayLike<number>; // [7, 7, C], [C]
  fc2: ArrayLike<number>; fc2B: ArrayLike<number>; // [C, h], [C]
}

/** One gated CNN block: x + fc2(gelu(g) ⊙ [i, dwconv7(c)]), g, i, c = split(fc1(ln(x)), [h, h − C, C]). */
export function gatedBlockRef(x: ArrayLike<number>, p: BlockRef, B: number, H: number, W: number, C: number): Float64Array {
  const N = B * H * W, h = hiddenOf(C);
  const t = gemmRef(layernormRef(x, p.normW, p.normB, N, C, EPS), p.fc1, p.fc1B, N, 2 * h, C);
  const conv = dwconv7Ref(t, 2 * h, 2 * h - C, p.convW, p.convB, B, H, W, C);
  const u = new Float64Array(N * h);
  for (let r = 0; r < N; ++r)
    for (let j = 0; j < h; ++j) {
      const v = j < h - C ? t[r * 2 * h + h + j] : conv[r * C + j - (h - C)];
      u[r * h + j] = geluRef(t[r * 2 * h + j]) * v;
    }
  const y = gemmRef(u, p.fc2, p.fc2B, N, C, h);
  for (let i = 0; i < y.length; ++i) y[i] += x[i];
  return y;
}

/** timm OIHW values → the kernels' HWIO (as lib/vision/repack.ts, written again here on purpose). */
export function hwio(w: ArrayLike<number>, O: number, I: number, K: number): Float64Array {
  const out = new Float64Array(O * I * K * K);
  for (let o = 0; o < O; ++o) for (let i = 0; i < I; ++i) for (let y = 0; y < K; ++y) for (let x = 0; x < K; ++x)
    out[((y * K + x) * I + i) * O + o] = w[((o * I + i) * K + y) * K + x];
  return out;
}

const gelu64 = (a: Float64Array): Float64Array => a.map(geluRef);

/**
 * The whole model in float64 from timm-named weights (OIHW convs): pixels [B, H, W, 3] → logits [B, K].
 * after(block, x, rows, C): called with the stream x [rows = B·h·w, C] after each block of the native plan's
 * order (stem, then per stage its downsample and gated blocks); may change it in place (residual-stream edits).
 */
export function mambaoutRef(w: Record<string, ArrayLike<number>>, s: { depths: number[]; dims: number[]; numClasses: number },
  px: ArrayLike<number>, B: number, H: number, W: number,
  after?: (block: number, x: Float64Array, rows: number, C: number) => void): Float64Array {
  const { x, h, w: wd } = mambaoutFeaturesRef(w, s, px, B, H, W, s.dims.length - 1, after);
  const ln = (x: ArrayLike<number>, p: string, rows: number, C: number): Float64Array => layernormRef(x, w[`${p}.weight`], w[`${p}.bias`], rows, C, EPS);
  const C3 = s.dims[s.dims.length - 1], F = 4 * C3;
  const pooled = ln(meanPoolRef(x, B, h * wd, C3), 'head.norm', B, C3);
  const hid = ln(gelu64(gemmRef(pooled, w['head.pre_logits.fc.weight'], w['head.pre_logits.fc.bias'], B, F, C3)), 'head.pre_logits.norm', B, F);
  return gemmRef(hid, w['head.fc.weight'], w['head.fc.bias'], B, s.numClasses, F);
}

/**
 * The stem and stages 0..stage in float64: an image encoder's feature map x [B, h, w, dims[stage]] (the tokens
 * [B, h·w, C]), with `after` as for mambaoutRef.
 */
export function mambaoutFeaturesRef(w: Record<string, ArrayLike<number>>, s: { depths: number[]; dims: number[] },
  px: ArrayLike<number>, B: number, H: number, W: number, stage: number,
  after?: (block: number, x: Float64Array, rows: number, C: number) => void): { x: Float64Array; h: number; w: number } {
  const ln = (x: ArrayLike<number>, p: string, rows: number, C: number): Float64Array => layernormRef(x, w[`${p}.weight`], w[`${p}.bias`], rows, C, EPS);
  const conv = (x: ArrayLike<number>, p: string, h: number, wd: number, Ci: number, Co: number): Float64Array =>
    conv3x3s2Ref(x, hwio(w[`${p}.weight`], Co, Ci, 3), w[`${p}.bias`], B, h, wd, Ci, Co);
  const C0 = s.dims[0], Ch = Math.floor(C0 / 2);
  let h = convS2Out(H), wd = convS2Out(W);
  let x: Float64Array = gelu64(ln(conv(px, 'stem.conv1', H, W, 3, Ch), 'stem.norm1', B * h * wd, Ch));
  x = ln(conv(x, 'stem.conv2', h, wd, Ch, C0), 'stem.norm2', B * convS2Out(h) * convS2Out(wd), C0);
  h = convS2Out(h), wd = convS2Out(wd);
  let block = 0;
  after?.(block++, x, B * h * wd, C0);
  s.dims.slice(0, stage + 1).forEach((C, i) => {
    if (i > 0) {
      x = conv(x, `stages.${i}.downsample.conv`, h, wd, s.dims[i - 1], C);
      h = convS2Out(h), wd = convS2Out(wd);
      x = ln(x, `stages.${i}.downsample.norm`, B * h * wd, C);
      after?.(block++, x, B * h * wd, C);
    }
    for (let j = 0; j < s.depths[i]; ++j) {
      const p = `stages.${i}.blocks.${j}.`;
      x = gatedBlockRef(x, {
        normW: w[`${p}norm.weight`], normB: w[`${p}norm.bias`], fc1: w[`${p}fc1.weight`], fc1B: w[`${p}fc1.bias`],
        convW: hwio(w[`${p}conv.weight`], C, 1, 7), convB: w[`${p}conv.bias`], fc2: w[`${p}fc2.weight`], fc2B: w[`${p}fc2.bias`],
      }, B, h, wd, C);
      after?.(block++, x, B * h * wd, C);
    }
  });
  return { x, h, w: wd };
}
