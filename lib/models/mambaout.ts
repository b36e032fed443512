// MambaOut image classifier (FORMATS.md §4, timm's mambaout_*): the weights of a timm checkpoint run
// as one native plan per call, channels last throughout:
//   stem: conv3×3/2 → LN → GELU → conv3×3/2 → LN                               [B, H/4, W/4, C0]
//   stage i: (i > 0: conv3×3/2 → LN) then depths[i] gated CNN blocks            [B, H/2^(i+2), …, Ci]
//     block: x + fc2(gelu(g) ⊙ [i, dwconv7(c)]),  g, i, c = split(fc1(LN(x)), [h, h − C, C])
//   head: mean over H, W → LN → fc (4·C3) → GELU → LN → fc                      [B, classes]
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { MambaOutConfig, MambaOutPart, expectedMambaOutTensors } from '../io/mambaout-config';
import { Checkpoint } from '../io/safetensors';
import { NativeModel, NativeTensor, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import { IMAGENET_CLASSES } from '../vision/imagenet-classes';
import { ImageInput, preprocessImages } from '../vision/preprocess';
import { repackConv } from '../vision/repack';
import { EditableModel, EditorHost } from '../editors/host';
import { editorEdits } from '../editors/passes';
import type { EditedRow, EditorRegistry } from '../editors/registry';
import { ResidualEdit, forwardWithEdits } from './edits';
import type { Classification, ClassifyOptions, ImageClassifier } from './interfaces';

export type { Classification, ClassifyOptions } from './interfaces';

const EPS = 1e-6; // timm's LayerNorm default for these models

/** The stream after each plan block for H × W pixels: positions per image (the stem halves twice, each downsample once more) and channels. */
function blockGrid(cfg: MambaOutConfig, blocks: readonly string[], H: number, W: number): { hw: number; channels: number }[] {
  const half = (n: number): number => Math.floor((n - 1) / 2) + 1;
  let h = half(half(H)), w = half(half(W)), stage = 0;
  return blocks.map((kind) => {
    if (kind === 'downsample') {
      [h, w] = [half(h), half(w)];
      ++stage;
    }
    return { hw: h * w, channels: cfg.dims[stage] };
  });
}

/** The native edits of a call on images [B, H, W, 3]: the caller's and its editor set's at each block's grid. */
export function visionEdits(reg: EditorRegistry, site: 'block' | 'encoder', cfg: MambaOutConfig, blocks: readonly string[], pixels: Tensor,
  edits: readonly ResidualEdit[] | undefined, set: string | undefined): ResidualEdit[] {
  const grid = blockGrid(cfg, blocks, pixels.shape[1], pixels.shape[2]);
  const rows: EditedRow[] | null = set === undefined ? null : Array.from({ length: pixels.shape[0] }, (_, b) => ({
    set, offset: 0, length: 0, promptLength: 0, atLayer: (l: number) => ({ offset: b * grid[l].hw, length: grid[l].hw }),
  }));
  return [...(edits ?? []), ...editorEdits(reg, site, rows, 'prefill')];
}

/** Linear weights are stored in `dtype`; convs, norms and biases stay f32. */
const isGemmWeight = (name: string): boolean => /(fc1|fc2|\.fc)\.weight$/.test(name);

export class MambaOutClassifier extends EditableModel implements ImageClassifier {
  readonly kind = 'classifier' as const;
  readonly #native: NativeModel;
  readonly #weights: Tensor[];
  readonly #editors: EditorHost;
  readonly labels: readonly string[];

  private constructor(readonly config: MambaOutConfig, readonly device: Device, readonly dtype: WeightDType,
    native: NativeModel, weights: Tensor[]) {
    super();
    this.#native = native;
    this.#weights = weights;
    // an editor of block l edits every position of its output (rows b·h·w + y·w + x), as wide as that stage
    this.#editors = new EditorHost(() => {
      const grid = blockGrid(config, this.blocks, 224, 224);
      return { hiddenSize: config.dims[config.dims.length - 1], numLayers: grid.length, modelType: 'mambaout', blockWidthAt: (l) => grid[l].channels };
    }, device);
    this.labels = config.labelNames ?? (config.numClasses === 1000 ? IMAGENET_CLASSES : Array.from({ length: config.numClasses }, (_, i) => `class ${i}`));
  }

  /** Loads a validated timm checkpoint onto `device` (convs repacked to the kernels' channels-last layout). */
  static async load(cfg: MambaOutConfig, ckpt: Checkpoint, device: Device, dtype: WeightDType, prefix = ''): Promise<MambaOutClassifier> {
    const { native, owned } = await createMambaOut(cfg, ckpt, device, dtype, { prefix });
    return new MambaOutClassifier(cfg, device, dtype, native, owned);
  }

  /** The native plan's blocks in order ('stem' | 'downsample' | 'gated_cnn'). */
  get blocks(): readonly string[] {
    return this.#native.blocks();
  }

  /**
   * pixels f32 [B, H, W, 3] (normalized, channels last) → logits f32 [B, classes]. `edits` apply after the given
   * blocks (rows b·h·w + y·w + x of the stream there); `editors` names an attached editor set.
   */
  async forward(pixels: Tensor, opts: { edits?: readonly ResidualEdit[]; editors?: string } = {}): Promise<Tensor> {
    if (!(pixels instanceof Tensor)) throw new MambakitError('E_ARG', 'forward: pixels must be a Tensor');
    const all = visionEdits(this.#editors.registry, 'block', this.config, this.blocks, pixels, opts.edits, opts.editors);
    return forwardWithEdits(this.#native, { input: pixels.handle, mode: 'forward' }, all, this.device);
  }

  protected override get editorHost(): EditorHost {
    return this.#editors;
  }

  /** Decodes, preprocesses (timm's eval transform) and classifies a batch of images. */
  async classify(images: ImageInput | readonly ImageInput[], opts: ClassifyOptions = {}): Promise<Classification[][]> {
    const list = Array.isArray(images) ? (images as readonly ImageInput[]) : [images as ImageInput];
    const topK = opts.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1) throw new MambakitError('E_ARG', `classify: topK must be a positive integer, got ${topK}`);
    const pixels = await preprocessImages(list, { ...opts, device: this.device });
    let logits: Tensor | undefined;
    try {
      logits = await this.forward(pixels, { editors: opts.editors });
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
    this.#editors.dispose();
    this.#native.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}

// Loads the tensors the plan reads (all, or up to the feature stage) from under `prefix` and builds the
// native plan: the classifier, or with featureStage the encoder that returns that stage's feature map.
async function createMambaOut(cfg: MambaOutConfig, ckpt: Checkpoint, device: Device, dtype: WeightDType,
  part: MambaOutPart): Promise<{ native: NativeModel; owned: Tensor[] }> {
  const prefix = part.prefix ?? '';
  const owned: Tensor[] = [];
  try {
    const handles: Record<string, NativeTensor> = {};
    for (const { name, unused } of expectedMambaOutTensors(cfg, part.featureStage)) {
      if (unused) continue;
      const full = prefix + name;
      const t = name.endsWith('.weight') && ckpt.get(full).shape.length === 4
        ? await repackConv(await ckpt.load(full, { dtype: 'f32' }), device, /\.blocks\.\d+\.conv\.weight$/.test(name))
        : await ckpt.load(full, { dtype: isGemmWeight(name) ? dtype : 'f32', device });
      owned.push(t);
      handles[name] = t.handle;
    }
    const config = part.featureStage === undefined
      ? { dims: cfg.dims, depths: cfg.depths, classes: cfg.numClasses, eps: EPS }
      : { dims: cfg.dims, depths: cfg.depths, feature_stage: part.featureStage, eps: EPS };
    return { native: call(() => addon.createModel('mambaout', config, handles, device)), owned };
  } catch (e) {
    owned.forEach((t) => t.dispose());
    throw e;
  }
}

/**
 * MambaOut as an image encoder (a VLM's vision tower): the stem and the stages up to `featureStage`,
 * whose last block's output is the feature map, returned as tokens [B, H·W, C] (no pooling, no head).
 */
export class MambaOutEncoder {
  readonly #native: NativeModel;
  readonly #weights: Tensor[];

  private constructor(readonly config: MambaOutConfig, readonly featureStage: number, readonly device: Device,
    readonly dtype: WeightDType, native: NativeModel, weights: Tensor[]) {
    this.#native = native;
    this.#weights = weights;
  }

  /** Loads the tensors up to the feature stage of a validated checkpoint (names under `prefix`). */
  static async load(cfg: MambaOutConfig, ckpt: Checkpoint, device: Device, dtype: WeightDType,
    part: MambaOutPart & { featureStage: number }): Promise<MambaOutEncoder> {
    const { native, owned } = await createMambaOut(cfg, ckpt, device, dtype, part);
    return new MambaOutEncoder(cfg, part.featureStage, device, dtype, native, owned);
  }

  /** Channels of the feature map (dims[featureStage]). */
  get channels(): number {
    return this.config.dims[this.featureStage];
  }

  /** The feature map's grid for H × W pixels: the stem halves twice, each later stage once more. */
  grid(H: number, W: number): [number, number] {
    const half = (n: number): number => Math.floor((n - 1) / 2) + 1;
    let h = half(half(H)), w = half(half(W));
    for (let i = 1; i <= this.featureStage; ++i) [h, w] = [half(h), half(w)];
    return [h, w];
  }

  /** The native plan's blocks in order ('stem' | 'downsample' | 'gated_cnn'): the indices edits refer to. */
  get blocks(): readonly string[] {
    return this.#native.blocks();
  }

  /** After each block (in `blocks` order) for H × W pixels: the positions per image (h·w) and the channels. */
  blockGrid(H: number, W: number): { hw: number; channels: number }[] {
    return blockGrid(this.config, this.blocks, H, W);
  }

  /**
   * pixels f32 [B, H, W, 3] (normalized, channels last) → the feature map f32 [B, h·w, C] (row-major
   * positions). `edits` apply after the given blocks; their rows are b·H'·W' + y·W' + x of the stream there.
   */
  async forward(pixels: Tensor, opts: { edits?: readonly ResidualEdit[] } = {}): Promise<Tensor> {
    if (!(pixels instanceof Tensor)) throw new MambakitError('E_ARG', 'encoder forward: pixels must be a Tensor');
    return forwardWithEdits(this.#native, { input: pixels.handle, mode: 'forward' }, opts.edits ?? [], this.device);
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
