// Eager ops of MambaOut's image kernels (NHWC, f32), for tests and research use: each queues one
// native op and resolves with its output. The model itself runs them inside its native plan.
import { addon, call } from '../native';
import { Tensor } from '../tensor';

async function one(name: string, inputs: (Tensor | undefined)[], attrs: Record<string, number> = {}): Promise<Tensor> {
  const [h] = await call(() => addon.runOp(name, inputs.map((t) => t?.handle ?? null), attrs));
  return Tensor.fromHandle(h);
}

/** 3×3 conv, stride 2, padding 1: x [B, H, W, Ci], w [3, 3, Ci, Co] (HWIO) → [B, ⌈H/2⌉, ⌈W/2⌉, Co]. */
export function conv3x3s2(x: Tensor, w: Tensor, bias?: Tensor): Promise<Tensor> {
  return one('conv3x3s2', [x, w, bias]);
}

/**
 * Depthwise 7×7 conv, padding 3, of the channel slice [offset, offset + C) of x [B, H, W, S]:
 * w [7, 7, C] → [B, H, W, C].
 */
export function dwconv7(x: Tensor, w: Tensor, bias?: Tensor, opts: { offset?: number } = {}): Promise<Tensor> {
  return one('dwconv7', [x, w, bias], { offset: opts.offset ?? 0 });
}

/** gelu(a) ⊙ b (exact erf GELU), or gelu(a) without b. */
export function geluGate(a: Tensor, b?: Tensor): Promise<Tensor> {
  return one('gelu_gate', [a, b]);
}

/** Mean over H and W: x [B, H, W, C] → [B, C]. */
export function meanPool(x: Tensor): Promise<Tensor> {
  return one('mean_pool', [x]);
}
