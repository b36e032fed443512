// A float64 transcription of MAGVIT-v2 as MMaDA defines it (Gen-Verse/MMaDA models/modeling_magvitv2.py:
// VQGANEncoder.forward, LFQuantizer.forward / get_indices / get_codebook_entry, VQGANDecoder.forward;
// models/common_modules.py: ResnetBlock, AttnBlock, Downsample, Upsample, Normalize, nonlinearity).
// Tensors are NHWC Float64Arrays; weights are read in torch's layout (OIHW) straight from the
// checkpoint's names, so the reference shares no repacking with the code under test.
import type { MagvitConfig } from '../../lib/io/magvit-config';

export interface Img { d: Float64Array; B: number; H: number; W: number; C: number }
export type RefWeights = Record<string, Float32Array | Float64Array>;

const img = (B: number, H: number, W: number, C: number): Img => ({ d: new Float64Array(B * H * W * C), B, H, W, C });

/** torch Conv2d (OIHW weight) on NHWC data with zero padding [top, bottom, left, right]. */
export function conv2dRef(x: Img, w: ArrayLike<number>, bias: ArrayLike<number> | null, Co: number, KH: number, KW: number,
  stride: number, pad: [number, number, number, number]): Img {
  const [pt, pb, pl, pr] = pad;
  const Ho = Math.floor((x.H + pt + pb - KH) / stride) + 1, Wo = Math.floor((x.W + pl + pr - KW) / stride) + 1;
  const y = img(x.B, Ho, Wo, Co), Ci = x.C;
  for (let b = 0; b < x.B; ++b)
    for (let i = 0; i < Ho; ++i)
      for (let j = 0; j < Wo; ++j)
        for (let o = 0; o < Co; ++o) {
          let s = bias ? bias[o] : 0;
          for (let ky = 0; ky < KH; ++ky) {
            const yy = i * stride - pt + ky;
            if (yy < 0 || yy >= x.H) continue;
            for (let kx = 0; kx < KW; ++kx) {
              const xx = j * stride - pl + kx;
              if (xx < 0 || xx >= x.W) continue;
              const xo = ((b * x.H + yy) * x.W + xx) * Ci;
              for (let c = 0; c < Ci; ++c) s += x.d[xo + c] * w[((o * Ci + c) * KH + ky) * KW + kx];
            }
          }
          y.d[((b * Ho + i) * Wo + j) * Co + o] = s;
        }
  return y;
}

/** torch.nn.GroupNorm(G, C, eps, affine) (biased variance). */
export function groupNormRef(x: Img, gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null, G: number, eps: number): Img {
  const y = img(x.B, x.H, x.W, x.C), P = x.H * x.W, C = x.C, cg = C / G;
  for (let b = 0; b < x.B; ++b)
    for (let g = 0; g < G; ++g) {
      let s = 0;
      for (let p = 0; p < P; ++p) for (let c = g * cg; c < (g + 1) * cg; ++c) s += x.d[(b * P + p) * C + c];
      const m = s / (P * cg);
      let v = 0;
      for (let p = 0; p < P; ++p) for (let c = g * cg; c < (g + 1) * cg; ++c) v += (x.d[(b * P + p) * C + c] - m) ** 2;
      const r = 1 / Math.sqrt(v / (P * cg) + eps);
      for (let p = 0; p < P; ++p)
        for (let c = g * cg; c < (g + 1) * cg; ++c) {
          const at = (b * P + p) * C + c;
          y.d[at] = (x.d[at] - m) * r * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
        }
    }
  return y;
}

export const siluRef = (x: Img): Img => ({ ...x, d: x.d.map((v) => v / (1 + Math.exp(-v))) });

/** F.interpolate(scale_factor=2, mode="nearest"). */
export function upsampleRef(x: Img): Img {
  const y = img(x.B, 2 * x.H, 2 * x.W, x.C);
  for (let b = 0; b < x.B; ++b)
    for (let i = 0; i < 2 * x.H; ++i)
      for (let j = 0; j < 2 * x.W; ++j)
        for (let c = 0; c < x.C; ++c) y.d[((b * 2 * x.H + i) * 2 * x.W + j) * x.C + c] = x.d[((b * x.H + (i >> 1)) * x.W + (j >> 1)) * x.C + c];
  return y;
}

/** softmax(scale · q kᵀ) v per image over its P positions: q, k, v [B, P, C] as flat arrays. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, B: number, P: number, C: number, scale: number): Float64Array {
  const o = new Float64Array(B * P * C), s = new Float64Array(P);
  for (let b = 0; b < B; ++b)
    for (let i = 0; i < P; ++i) {
      let m = -Infinity;
      for (let j = 0; j < P; ++j) {
        let t = 0;
        for (let c = 0; c < C; ++c) t += q[(b * P + i) * C + c] * k[(b * P + j) * C + c];
        s[j] = t * scale;
        m = Math.max(m, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < P; ++j) sum += (s[j] = Math.exp(s[j] - m));
      for (let j = 0; j < P; ++j)
        for (let c = 0; c < C; ++c) o[(b * P + i) * C + c] += (s[j] / sum) * v[(b * P + j) * C + c];
    }
  return o;
}

/** LFQuantizer: z_q = ±1 by z > 0, index = Σ power_vals[d] · (z_q[d] > 0), power_vals = 2^(D-1-d). */
export function lfqCodesRef(z: ArrayLike<number>, rows: number, D: number): Int32Array {
  const codes = new Int32Array(rows);
  for (let r = 0; r < rows; ++r) {
    let idx = 0;
    for (let d = 0; d < D; ++d) {
      const zq = z[r * D + d] > 0 ? 1 : -1;
      idx += 2 ** (D - 1 - d) * (zq > 0 ? 1 : 0);
    }
    codes[r] = idx;
  }
  return codes;
}

/** get_codebook_entry: embedding[i] = ((i >> arange(D-1, -1, -1)) & 1) · 2 − 1. */
export function lfqEntriesRef(codes: ArrayLike<number>, D: number): Float64Array {
  const z = new Float64Array(codes.length * D);
  for (let r = 0; r < codes.length; ++r) for (let d = 0; d < D; ++d) z[r * D + d] = ((codes[r] >> (D - 1 - d)) & 1) * 2 - 1;
  return z;
}

class Model {
  constructor(readonly w: RefWeights, readonly G: number) {}
  conv(x: Img, p: string, k: number, stride = 1, pad: [number, number, number, number] = [k >> 1, k >> 1, k >> 1, k >> 1]): Img {
    const b = this.w[`${p}.bias`];
    return conv2dRef(x, this.w[`${p}.weight`], b, b.length, k, k, stride, pad);
  }
  norm(x: Img, p: string): Img {
    return groupNormRef(x, this.w[`${p}.weight`], this.w[`${p}.bias`], this.G, 1e-6);
  }
  resnet(x: Img, p: string): Img {
    let h = this.conv(siluRef(this.norm(x, `${p}.norm1`)), `${p}.conv1`, 3);
    h = this.conv(siluRef(this.norm(h, `${p}.norm2`)), `${p}.conv2`, 3);
    const s = this.w[`${p}.nin_shortcut.weight`] ? this.conv(x, `${p}.nin_shortcut`, 1) : x;
    return { ...h, d: h.d.map((v, i) => v + s.d[i]) };
  }
  attn(x: Img, p: string): Img {
    const h = this.norm(x, `${p}.norm`);
    const q = this.conv(h, `${p}.q`, 1), k = this.conv(h, `${p}.k`, 1), v = this.conv(h, `${p}.v`, 1);
    const o = attentionRef(q.d, k.d, v.d, x.B, x.H * x.W, x.C, x.C ** -0.5);
    const pr = this.conv({ ...x, d: o }, `${p}.proj_out`, 1);
    return { ...x, d: x.d.map((val, i) => val + pr.d[i]) };
  }
  mid(x: Img, p: string): Img {
    return this.resnet(this.attn(this.resnet(x, `${p}.mid.block_1`), `${p}.mid.attn_1`), `${p}.mid.block_2`);
  }
}

/** VQGANEncoder.forward → the latents before quantization, NHWC [B, H/f, W/f, z]. */
export function encoderRef(cfg: MagvitConfig, w: RefWeights, pixels: Img): Img {
  const m = new Model(w, cfg.numGroups), e = cfg.encoder, L = e.chMult.length;
  let h = m.conv(pixels, 'encoder.conv_in', 3);
  for (let i = 0; i < L; ++i) {
    for (let j = 0; j < e.numResBlocks[i]; ++j) {
      h = m.resnet(h, `encoder.down.${i}.block.${j}`);
      if (e.attn[i]) h = m.attn(h, `encoder.down.${i}.attn.${j}`);
    }
    if (i !== L - 1) h = m.conv(h, `encoder.down.${i}.downsample.conv`, 3, 2, [0, 1, 0, 1]); // pad (0, 1, 0, 1), stride 2
  }
  h = m.mid(h, 'encoder');
  h = m.conv(siluRef(m.norm(h, 'encoder.norm_out')), 'encoder.conv_out', 3);
  return m.conv(h, 'encoder.quant_conv', 1);
}

/** VQGANDecoder.forward(get_codebook_entry(codes)) → pixels NHWC [B, h·f, w·f, 3]. */
export function decoderRef(cfg: MagvitConfig, w: RefWeights, codes: ArrayLike<number>, B: number, hh: number, ww: number): Img {
  const m = new Model(w, cfg.numGroups), d = cfg.decoder, L = d.chMult.length, D = cfg.codebookBits;
  let h = m.conv({ d: lfqEntriesRef(codes, D), B, H: hh, W: ww, C: D }, 'decoder.post_quant_conv', 1);
  h = m.conv(h, 'decoder.conv_in', 3);
  h = m.mid(h, 'decoder');
  for (let i = L - 1; i >= 0; --i) {
    for (let j = 0; j < d.numResBlocks[i]; ++j) {
      h = m.resnet(h, `decoder.up.${i}.block.${j}`);
      if (d.attn[i]) h = m.attn(h, `decoder.up.${i}.attn.${j}`);
    }
    if (i !== 0) h = m.conv(upsampleRef(h), `decoder.up.${i}.upsample.conv`, 3);
  }
  return m.conv(siluRef(m.norm(h, 'decoder.norm_out')), 'decoder.conv_out', 3);
}
