// MambaOut image classifier (FORMATS.md §4, timm's mambaout_*): the weights of a timm checkpoint run
// as one native plan per call, channels last throughout:
//   stem: conv3×3/2 → LN → GELU → conv3×3/2 → LN                               [B, H/4, W/4, C0]
//   stage i: (i > 0: conv3×3/2 → LN) then depths[i] gated CNN blocks            [B, H/2^(i+2), …, Ci]
//     block: x + fc2(gelu(g) ⊙ [i, dwconv7(c)]),  g, i, c = split(fc1(LN(x)), [h, h − C, C])
//   head: mean over H, W → LN → fc (4·C3) → GELU → LN → fc                      [B, classes]
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { MambaOutConfig, expectedMambaOutTensors } from '../io/mambaout-config';
import { Checkpoint } from '../io/safetensors';
import { NativeModel, NativeTensor, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import { IMAGENET_CLASSES } from '../vision/imagenet-classes';
import { ImageInput, preprocessImages } from '../vision/preprocess';
import { repackConv } from '../vision/repack';
import type { Classification, ClassifyOptions, ImageClassifier } from './interfaces';

export type { Classification, ClassifyOptions } from './interfaces';

const EPS = 1e-6; // timm's LayerNorm default for these models

/** Linear weights are stored in `dtype`; convs, norms and biases stay f32. */
const isGemmWeight = (name: string): boolean => /(fc1|fc2|\.fc)\.weight$/.test(name);

export class MambaOutClassifier implements ImageClassifier {
  readonly kind = 'classifier' as const;
  readonly #native: NativeModel;
  readonly #weights: Tensor[];
  readonly labels: readonly string[];

  private constructor(readonly config: MambaOutConfig, readonly device: Device, readonly dtype: WeightDType,
    native: NativeModel, weights: Tensor[]) {
    this.#native = native;
    this.#weights = weights;
    this.labels = config.labelNames ?? (config.numClasses === 1000 ? IMAGENET_CLASSES : Array.from({ length: config.numClasses }, (_, i) => `class ${i}`));
  }

  /** Loads a validated timm checkpoint onto `device` (convs repacked to the kernels' channels-last layout). */
  static async load(cfg: MambaOutConfig, ckpt: Checkpoint, device: Device, dtype: WeightDType): Promise<MambaOutClassifier> {
    const owned: Tensor[] = [];
    try {
      const handles: Record<string, NativeTensor> = {};
      for (const { name } of expectedMambaOutTensors(cfg)) {
        const t = name.endsWith('.weight') && ckpt.get(name).shape.length === 4
          ? await repackConv(await ckpt.load(name, { dtype: 'f32' }), device, /\.blocks\.\d+\.conv\.weight$/.test(name))
          : await ckpt.load(name, { dtype: isGemmWeight(name) ? dtype : 'f32', device });
        owned.push(t);
        handles[name] = t.handle;
      }
      const native = call(() => addon.createModel('mambaout',
        { dims: cfg.dims, depths: cfg.depths, classes: cfg.numClasses, eps: EPS }, handles, device));
      return new MambaOutClassifier(cfg, device, dtype, native, owned);
    } catch (e) {
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  /** The native plan's blocks in order ('stem' | 'downsample' | 'gated_cnn'). */
  get blocks(): readonly string[] {
    return this.#native.blocks();
  }

  /** pixels f32 [B, H, W, 3] (normalized, channels last) → logits f32 [B, classes]. */
  async forward(pixels: Tensor): Promise<Tensor> {
    if (!(pixels instanceof Tensor)) throw new MambakitError('E_ARG', 'forward: pixels must be a Tensor');
    return Tensor.fromHandle(await call(() => this.#native.forward({ input: pixels.handle, mode: 'forward' })));
  }

  /** Decodes, preprocesses (timm's eval transform) and classifies a batch of images. */
  async classify(images: ImageInput | readonly ImageInput[], opts: ClassifyOptions = {}): Promise<Classification[][]> {
    const list = Array.isArray(images) ? (images as readonly ImageInput[]) : [images as ImageInput];
    const topK = opts.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1) throw new MambakitError('E_ARG', `classify: topK must be a positive integer, got ${topK}`);
    const pixels = await preprocessImages(list, { ...opts, device: this.device });
    let logits: Tensor | undefined;
    try {
      logits = await this.forward(pixels);
      const z = (await logits.data()) as Float32Array;
      const K = this.config.numClasses;
      return list.map((_, b) => topClasses(z.subarray(b * K, (b + 1) * K), Math.min(topK, K), this.labels));
    } finally {
      pixels.dispose();
      logits?.dispose();
    }
  }

  /** Frees the weights. */
  dispose(): void {
    this.#native.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}

// softmax in float64, then the k largest (ties to the lower index)
function topClasses(z: Float32Array, k: number, labels: readonly string[]): Classification[] {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const idx = Array.from(z.keys()).sort((a, b) => z[b] - z[a] || a - b).slice(0, k);
  return idx.map((i) => ({ label: labels[i], index: i, probability: Math.exp(z[i] - max) / sum }));
}
