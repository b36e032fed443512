// One MambaOut gated CNN block, runnable alone (tests, and `benchGatedBlock` for `mambakit bench`):
//   y = x + fc2(gelu(g) ⊙ [i, dwconv7(c)]),  g, i, c = split(fc1(LN(x)), [h, h − C, C]),  h = int(8/3·C)
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { gatedHidden } from '../io/mambaout-config';
import { NativeModel, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import { uniformArray } from '../util/random';
import { time } from '../util/time';
import { oihwToHwio } from './repack';

/** A block's weights as timm names them inside the block, in timm's shapes (conv.weight [C, 1, 7, 7]). */
export type GatedBlockWeights = Record<'norm.weight' | 'norm.bias' | 'fc1.weight' | 'fc1.bias' | 'conv.weight' | 'conv.bias' | 'fc2.weight' | 'fc2.bias', Float32Array>;

export class GatedCNNBlock {
  readonly #weights: Record<string, Tensor>;
  readonly #plans = new Map<number, NativeModel>(); // one native plan (family gated_cnn_block) per eps

  private constructor(readonly channels: number, readonly device: Device, weights: Record<string, Tensor>) {
    this.#weights = weights;
  }

  #plan(eps: number): NativeModel {
    const handles = Object.fromEntries(Object.entries(this.#weights).map(([k, t]) => [k, t.handle]));
    const p = call(() => addon.createModel('gated_cnn_block', { channels: this.channels, eps }, handles, this.device));
    this.#plans.set(eps, p);
    return p;
  }

  /** Uploads the weights (fc1/fc2 in `dtype`, the rest f32); shapes are checked natively here. */
  static create(channels: number, w: GatedBlockWeights, opts: { device?: Device; dtype?: WeightDType } = {}): GatedCNNBlock {
    const C = channels, h = gatedHidden(C), device = opts.device ?? 'cpu', dtype = opts.dtype ?? 'f32';
    if (!Number.isInteger(C) || C < 2) throw new MambakitError('E_ARG', `GatedCNNBlock: channels must be an integer >= 2, got ${C}`);
    if (w['conv.weight'].length !== C * 49) throw new MambakitError('E_SHAPE', `GatedCNNBlock: conv.weight has ${w['conv.weight'].length} values, expected [${C}, 1, 7, 7]`);
    const shapes: Record<keyof GatedBlockWeights, number[]> = {
      'norm.weight': [C], 'norm.bias': [C], 'fc1.weight': [2 * h, C], 'fc1.bias': [2 * h],
      'conv.weight': [7, 7, C], 'conv.bias': [C], 'fc2.weight': [C, h], 'fc2.bias': [C],
    };
    const t: Record<string, Tensor> = {};
    try {
      for (const [k, shape] of Object.entries(shapes) as [keyof GatedBlockWeights, number[]][]) {
        const data = k === 'conv.weight' ? oihwToHwio(w[k], C, 1, 7, 7) : w[k];
        t[k] = Tensor.from(data, shape, { device, dtype: k.endsWith('.weight') && k.startsWith('fc') ? dtype : 'f32' });
      }
      const block = new GatedCNNBlock(C, device, t);
      block.#plan(1e-6); // builds (and checks) the plan now
      return block;
    } catch (e) {
      Object.values(t).forEach((x) => x.dispose());
      throw e;
    }
  }

  /** x f32 [B, H, W, C] → y [B, H, W, C] (a new tensor). */
  async forward(x: Tensor, eps = 1e-6): Promise<Tensor> {
    if (!(x instanceof Tensor)) throw new MambakitError('E_ARG', 'GatedCNNBlock.forward: x must be a Tensor');
    const plan = this.#plans.get(eps) ?? this.#plan(eps);
    return Tensor.fromHandle(await call(() => plan.forward({ input: x.handle, mode: 'forward' })));
  }

  dispose(): void {
    this.#plans.forEach((p) => p.dispose());
    this.#plans.clear();
    Object.values(this.#weights).forEach((t) => t.dispose());
  }
}

export interface GatedBlockBenchOptions {
  batch: number;
  /** The block's tokens are an H × W grid: T = height · width. */
  height?: number;
  width?: number;
  /** Or T tokens, laid out as the squarest grid H × W = T (e.g. 196 → 14 × 14, 100 → 10 × 10). */
  tokens?: number;
  channels: number;
  dtype?: WeightDType;
  device?: Device;
  /** Timed calls after one warm-up (default 5). */
  reps?: number;
}

/** Times one gated CNN block on random weights and input: seconds per call and tokens (B·H·W) per second. */
export async function benchGatedBlock(o: GatedBlockBenchOptions): Promise<{ seconds: number; tokensPerSecond: number; height: number; width: number }> {
  const C = o.channels, h = gatedHidden(C), reps = o.reps ?? 5;
  const [H, W] = o.tokens !== undefined ? squarestGrid(o.tokens) : [o.height ?? 0, o.width ?? 0];
  if (![o.batch, H, W, reps].every((v) => Number.isInteger(v) && v >= 1))
    throw new MambakitError('E_ARG', `benchGatedBlock: batch, reps and tokens (or height and width) must be positive integers`);
  const w: GatedBlockWeights = {
    'norm.weight': uniformArray(C, 1), 'norm.bias': uniformArray(C, 0.1),
    'fc1.weight': uniformArray(2 * h * C, 1 / Math.sqrt(C)), 'fc1.bias': uniformArray(2 * h, 0.1),
    'conv.weight': uniformArray(49 * C, 1 / 7), 'conv.bias': uniformArray(C, 0.1),
    'fc2.weight': uniformArray(C * h, 1 / Math.sqrt(h)), 'fc2.bias': uniformArray(C, 0.1),
  };
  const block = GatedCNNBlock.create(C, w, { device: o.device, dtype: o.dtype });
  const x = Tensor.from(uniformArray(o.batch * H * W * C, 1), [o.batch, H, W, C], { device: o.device });
  try {
    (await block.forward(x)).dispose();
    const seconds = (await time(async () => { for (let r = 0; r < reps; ++r) (await block.forward(x)).dispose(); })) / reps;
    return { seconds, tokensPerSecond: (o.batch * H * W) / seconds, height: H, width: W };
  } finally {
    x.dispose();
    block.dispose();
  }
}

/** H × W = T with H the largest divisor of T not above √T. */
function squarestGrid(T: number): [number, number] {
  if (!Number.isInteger(T) || T < 1) return [0, 0];
  let H = Math.floor(Math.sqrt(T));
  while (T % H !== 0) --H;
  return [H, T / H];
}
