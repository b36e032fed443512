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
