// Eager ops of the MAGVIT-v2 image tokenizer's kernels (NHWC f32, csrc/core/magvit.h), for tests and
// research use: each queues one native op and resolves with its output. The tokenizer itself runs
// them inside its native plans.
import { addon, call } from '../native';
import { Tensor } from '../tensor';

async function one(name: string, inputs: (Tensor | undefined)[], attrs: Record<string, number> = {}): Promise<Tensor> {
  const [h] = await call(() => addon.runOp(name, inputs.map((t) => t?.handle ?? null), attrs));
  return Tensor.fromHandle(h);
}

export interface Conv2dOptions {
  /** Default 1. */
  stride?: number;
  /** Zero padding of each side (default 0); `padding` sets all four. */
  padding?: number;
  padTop?: number;
  padBottom?: number;
  padLeft?: number;
  padRight?: number;
  /** Added to the output in the same pass (the output's shape). */
  residual?: Tensor;
}

/**
 * 2-D convolution: x [B, H, W, Ci], w [KH, KW, Ci, Co] (HWIO), bias? [Co] →
 * [B, (H + pt + pb − KH) / s + 1, (W + pl + pr − KW) / s + 1, Co] (floor division), plus `residual`.
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Promise<Tensor> {
  const p = opts.padding ?? 0;
  return one('conv2d', [x, w, bias, opts.residual], {
    stride: opts.stride ?? 1, pad_top: opts.padTop ?? p, pad_bottom: opts.padBottom ?? p, pad_left: opts.padLeft ?? p, pad_right: opts.padRight ?? p,
  });
}

/** torch.nn.GroupNorm over x [B, H, W, C] (channels last) in `groups` groups (default 32, eps 1e-6), then SiLU when `silu`. */
export function groupNorm(x: Tensor, gamma?: Tensor, beta?: Tensor, opts: { groups?: number; eps?: number; silu?: boolean } = {}): Promise<Tensor> {
  return one('group_norm', [x, gamma, beta], { groups: opts.groups ?? 32, eps: opts.eps ?? 1e-6, silu: opts.silu ? 1 : 0 });
}

/** Nearest-neighbour 2× upsampling: [B, H, W, C] → [B, 2H, 2W, C]. */
export function upsample2x(x: Tensor): Promise<Tensor> {
  return one('upsample2x', [x]);
}

/** One-head attention over the P positions of each image: q, k, v [B, P, C] → softmax(scale·q kᵀ) v (scale default C^−½). */
export function spatialAttention(q: Tensor, k: Tensor, v: Tensor, opts: { scale?: number } = {}): Promise<Tensor> {
  return one('spatial_attn', [q, k, v], opts.scale === undefined ? {} : { scale: opts.scale });
}

/** Lookup-free quantization: z f32 [..., D] → codes i32 [...], code = Σ_d [z_d > 0]·2^(D−1−d) (channel 0 the high bit). */
export function lfqEncode(z: Tensor): Promise<Tensor> {
  return one('lfq_encode', [z]);
}

/** The LFQ codebook vectors: codes i32 [...] → f32 [..., bits] of ±1 (bit D−1−d of the code for channel d); E_ARG for a code outside [0, 2^bits). */
export function lfqDecode(codes: Tensor, bits = 13): Promise<Tensor> {
  return one('lfq_decode', [codes], { bits });
}
