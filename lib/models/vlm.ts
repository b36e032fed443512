// A LLaVA-style vision-language model from mambakit's parts (docs/mamba-vlm.md): a MambaOut image encoder
// stopping at its feature stage → a projector (LLaVA's linear or mlp2x_gelu) → a Mamba-family language
// model, whose prompt gets the projected feature map's H·W tokens at the image placeholder (in the image
// modality of a Mixture-of-Mamba). Generation is the language model's: a request with an image is prefilled
// from its embeddings through the same continuous-batching scheduler as text requests.
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import type { SchedulerOptions } from '../generate/scheduler';
import type { Checkpoint } from '../io/safetensors';
import { IMAGE_PLACEHOLDER, VLM_PREFIXES, VlmConfig } from '../io/vlm-config';
import { gelu, gemm } from '../ops';
import { Device, Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import { ImageInput, preprocessImages } from '../vision/preprocess';
import type { EditorSet, ReadEditorsOptions } from '../editors/format';
import { applyReft, editorEdits } from '../editors/passes';
import type { EditedRow } from '../editors/registry';
import type { ResidualEdit } from './edits';
import type { BatchLoad, VisionLanguageModel, VisionPrompt } from './interfaces';
import { MambaLM } from './mamba';
import { MambaOutEncoder, visionEdits } from './mambaout';
import type { ModalityBatch } from './tokens';

export type { VisionPrompt } from './interfaces';

export interface VlmEncodeOptions {
  /** Residual-stream edits of the image encoder: `after` an encoder block (encoderBlocks), rows b·H·W + position of the stream there. */
  encoderEdits?: readonly ResidualEdit[];
  /** An attached editor set: its encoder, projector and language-model editors edit this prompt (MRT's sites). */
  editors?: string;
}

export interface VlmForwardOptions extends VlmEncodeOptions {
  /** Residual-stream edits of the language model (lm.blocks; rows = prompt positions, image tokens included). */
  edits?: readonly ResidualEdit[];
}

export type VlmGenerateOptions = GenerateOptions & VlmEncodeOptions;

/** A prompt as the language model takes it. */
export interface VlmPrompt {
  /** Token ids, image_token_id at each image position (what usage counts and the repetition penalty see). */
  ids: number[];
  /** The input embeddings f32 [1, T, D]: embedding rows for text tokens, the projected features for image tokens. */
  embeds: Tensor;
  /** The modality id of each position (Mixture-of-Mamba: image_modality on the image span, text_modality elsewhere; 0 otherwise). */
  modalities: number[];
  /** Positions [start, end) of the image tokens; null without an image. */
  imageSpan: [number, number] | null;
}

interface Projector {
  w0: Tensor; b0: Tensor;
  w2: Tensor | null; b2: Tensor | null; // mlp2x_gelu
}

export class MambaVLM implements VisionLanguageModel {
  readonly kind = 'vlm' as const;
  readonly modelType = 'mamba_vlm';
  readonly #projector: Projector;

  private constructor(readonly config: VlmConfig, readonly encoder: MambaOutEncoder, projector: Projector, readonly lm: MambaLM) {
    this.#projector = projector;
    // editor sets live on the language model, which learns the VLM's other sites (the encoder's widths
    // after each block at the configured image size; the projector's output is the LM's width)
    const grid = encoder.blockGrid(config.imageSize, config.imageSize);
    lm.partOf = {
      modelType: this.modelType, projector: { hiddenSize: config.text.hiddenSize },
      encoder: { numLayers: grid.length, widthAt: (l) => grid[l].channels },
    };
  }

  /** Loads a validated checkpoint: the encoder up to its feature stage, the projector, the language model (GEMM weights in `dtype`). */
  static async load(cfg: VlmConfig, ckpt: Checkpoint, V: number, device: Device, dtype: WeightDType): Promise<MambaVLM> {
    const owned: Tensor[] = [];
    let encoder: MambaOutEncoder | null = null;
    try {
      encoder = await MambaOutEncoder.load(cfg.vision, ckpt, device, dtype, { prefix: VLM_PREFIXES.vision, featureStage: cfg.featureStage });
      const get = async (name: string, dt: WeightDType): Promise<Tensor> => {
        const t = await ckpt.load(VLM_PREFIXES.projector + name, { dtype: dt, device });
        owned.push(t);
        return t;
      };
      const mlp = cfg.projectorType === 'mlp2x_gelu';
      const projector: Projector = {
        w0: await get('0.weight', dtype), b0: await get('0.bias', 'f32'),
        w2: mlp ? await get('2.weight', dtype) : null, b2: mlp ? await get('2.bias', 'f32') : null,
      };
      const lm = await MambaLM.load(cfg.text, ckpt, V, device, dtype, VLM_PREFIXES.text);
      return new MambaVLM(cfg, encoder, projector, lm);
    } catch (e) {
      encoder?.dispose();
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  get device(): Device {
    return this.lm.device;
  }

  get dtype(): WeightDType {
    return this.lm.dtype;
  }

  get tokenizer(): Tokenizer | null {
    return this.lm.tokenizer;
  }

  set tokenizer(t: Tokenizer | null) {
    this.lm.tokenizer = t;
  }

  get imageTokenId(): number {
    return this.config.imageTokenId;
  }

  /** Tokens one image becomes at the configured image_size: the feature stage's H·W. */
  get imageTokens(): number {
    const [h, w] = this.encoder.grid(this.config.imageSize, this.config.imageSize);
    return h * w;
  }

  /** The image encoder's blocks in order ('stem' | 'gated_cnn' | 'downsample'): the indices encoderEdits refer to (lm.blocks for the language model's). */
  get encoderBlocks(): readonly string[] {
    return this.encoder.blocks;
  }

  /**
   * Images → their tokens in the language model's embedding space, f32 [B, H·W, D]: decoded and preprocessed
   * (image_size, crop_pct, image_mean / image_std), or given as pixels f32 [B, H, W, 3]; then the encoder and project().
   */
  async encodeImages(images: readonly ImageInput[] | Tensor, opts: VlmEncodeOptions = {}): Promise<Tensor> {
    const c = this.config;
    const pixels = images instanceof Tensor ? images
      : await preprocessImages(images, { size: c.imageSize, cropPct: c.cropPct, mean: c.imageMean, std: c.imageStd, device: this.device });
    let features: Tensor | null = null;
    try {
      // the set's encoder editors at each block's grid of this image size, then its projector editors on
      // the image tokens [B, n, D] (stream rows b·n + i)
      const reg = this.lm.editorRegistry;
      const edits = visionEdits(reg, 'encoder', this.encoder.config, this.encoder.blocks, pixels, opts.encoderEdits, opts.editors);
      features = await this.encoder.forward(pixels, { edits });
      const out = await this.project(features);
      const n = out.shape[1];
      const rows: EditedRow[] | null = opts.editors === undefined ? null
        : Array.from({ length: out.shape[0] }, (_, b) => ({ set: opts.editors as string, offset: b * n, length: n, promptLength: n }));
      return await applyReft(out, editorEdits(reg, 'projector', rows, 'prefill'));
    } finally {
      if (pixels !== images) pixels.dispose();
      features?.dispose();
    }
  }

  /** The projector: the encoder's feature map f32 [B, n, C_vision] → f32 [B, n, D_text] (Linear, or Linear → GELU → Linear). */
  async project(features: Tensor): Promise<Tensor> {
    const C = this.encoder.channels;
    if (!(features instanceof Tensor) || features.dtype !== 'f32' || features.shape.length !== 3 || features.shape[2] !== C)
      throw new MambakitError('E_SHAPE', `project: features must be f32 [B, n, ${C}], got ${features instanceof Tensor ? features.toString() : typeof features}`);
    const p = this.#projector;
    const h = await gemm(features, p.w0, p.b0);
    if (!p.w2 || !p.b2) return h;
    let g: Tensor | null = null;
    try {
      g = await gelu(h);
      return await gemm(g, p.w2, p.b2);
    } finally {
      h.dispose();
      g?.dispose();
    }
  }

  /**
   * A prompt's token ids: text is tokenized around its `<image>` placeholder, which becomes image_token_id (one
   * BOS, at the start); ids pass as given. More than one placeholder is E_ARG.
   */
  tokenize(prompt: string | readonly number[]): number[] {
    let ids: number[];
    if (typeof prompt === 'string') {
      const tok = this.tokenizer;
      if (!tok) throw new MambakitError('E_ARG', `${this.modelType}: this model has no tokenizer.json; pass token ids (image_token_id ${this.imageTokenId} marks the image)`);
      const pieces = prompt.split(IMAGE_PLACEHOLDER);
      if (pieces.length > 2) throw new MambakitError('E_ARG', `prompt has ${pieces.length - 1} image placeholders '${IMAGE_PLACEHOLDER}': a prompt takes one image`);
      ids = tok.encode(pieces[0]);
      if (pieces.length === 2) {
        const rest = tok.encode(pieces[1]);
        if (tok.addEosToken && ids[ids.length - 1] === tok.eosTokenId) ids.pop();
        if (tok.addBosToken && rest[0] === tok.bosTokenId) rest.shift();
        ids.push(this.imageTokenId, ...rest);
      }
    } else if (Array.isArray(prompt)) {
      ids = Array.from(prompt);
    } else {
      throw new MambakitError('E_ARG', `prompt must be a string or token ids, got ${typeof prompt}`);
    }
    const n = ids.filter((id) => id === this.imageTokenId).length;
    if (n > 1) throw new MambakitError('E_ARG', `prompt has ${n} image placeholders (image_token_id ${this.imageTokenId}): a prompt takes one image`);
    return ids;
  }

  // The ids of a prompt without an image (a placeholder in it is E_ARG).
  #textIds(input: VisionPrompt): number[] {
    const ids = this.tokenize(input.prompt);
    if (ids.includes(this.imageTokenId))
      throw new MambakitError('E_ARG', `prompt has an image placeholder (image_token_id ${this.imageTokenId}) but no image was given`);
    return ids;
  }

  // Per-position modalities as the language model takes them (Mixture-of-Mamba only).
  #modalities(m: readonly number[]): ModalityBatch | undefined {
    return this.config.imageModality === null ? undefined : [m];
  }

  /**
   * The language model's input for an image and a prompt: the image's tokens at the placeholder (or first,
   * after a leading BOS, as LLaVA puts them), text tokens as embedding rows. The caller disposes `embeds`.
   */
  async prompt(input: VisionPrompt, opts: VlmEncodeOptions = {}): Promise<VlmPrompt> {
    const c = this.config;
    const textMod = c.textModality ?? 0, imageMod = c.imageModality ?? 0;
    if (input.image === undefined) {
      const ids = this.#textIds(input);
      return { ids, embeds: await this.lm.embed([ids]), modalities: ids.map(() => textMod), imageSpan: null };
    }
    const ids = this.tokenize(input.prompt);
    const at = ids.indexOf(c.imageTokenId);
    const text = at < 0 ? ids : [...ids.slice(0, at), ...ids.slice(at + 1)];
    const bos = this.tokenizer?.bosTokenId ?? null;
    const start = at >= 0 ? at : bos !== null && text[0] === bos ? 1 : 0;
    const img = input.image;
    if (img instanceof Tensor && img.shape[0] !== 1)
      throw new MambakitError('E_SHAPE', `prompt: the image must be one image (pixels [1, H, W, 3]), got ${img.toString()}`);
    let textEmb: Tensor | null = null, feats: Tensor | null = null;
    try {
      textEmb = text.length > 0 ? await this.lm.embed([text]) : null; // checks the ids before the image is encoded
      feats = await this.encodeImages(img instanceof Tensor ? img : [img], opts);
      const D = c.text.hiddenSize, n = feats.shape[1], T = text.length + n;
      const tv = textEmb ? ((await textEmb.data()) as Float32Array) : new Float32Array(0);
      const data = new Float32Array(T * D);
      data.set(tv.subarray(0, start * D), 0);
      data.set((await feats.data()) as Float32Array, start * D);
      data.set(tv.subarray(start * D), (start + n) * D);
      const out = [...text.slice(0, start), ...new Array<number>(n).fill(c.imageTokenId), ...text.slice(start)];
      return {
        ids: out, embeds: Tensor.from(data, [1, T, D], { device: this.device }),
        modalities: out.map((_, t) => (t >= start && t < start + n ? imageMod : textMod)), imageSpan: [start, start + n],
      };
    } finally {
      textEmb?.dispose();
      feats?.dispose();
    }
  }

  /** Logits for every position of the prompt, image tokens included: [1, T, V]. No state is kept. */
  async forward(input: VisionPrompt, opts: VlmForwardOptions = {}): Promise<Tensor> {
    if (input.image === undefined) {
      const ids = this.#textIds(input);
      return this.lm.forward([ids], { modalities: this.#modalities(ids.map(() => this.config.textModality ?? 0)), edits: opts.edits, editors: opts.editors });
    }
    const p = await this.prompt(input, opts);
    try {
      return await this.lm.forward(p.embeds, {
        modalities: this.#modalities(p.modalities), edits: opts.edits, editors: opts.editors, imageSpans: [p.imageSpan],
      });
    } finally {
      p.embeds.dispose();
    }
  }

  /**
   * Streams generated text for an image and a prompt (a text-only prompt is the language model's own
   * generate). Requests share the language model's batched decode steps; generated tokens are text.
   */
  async *generate(input: VisionPrompt, opts: VlmGenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult> {
    const { encoderEdits, ...o } = opts;
    const gen: GenerateOptions = this.config.textModality === null || o.modality !== undefined ? o : { ...o, modality: this.config.textModality };
    if (input.image === undefined) return yield* this.lm.generate(this.#textIds(input), gen);
    const p = await this.prompt(input, { encoderEdits, editors: o.editors });
    // The scheduler reads p.embeds when it prefills the request. It has done so (or never will) once the
    // generation returns or throws; a consumer that stops early leaves the request to be dropped at the next
    // step, which may still be admitting it: then the tensor is left to the garbage collector.
    let settled = false;
    try {
      const r = yield* this.lm.generateWith(p.ids, gen, {
        prefillEmbeds: p.embeds, prefillModalities: this.config.imageModality === null ? undefined : p.modalities,
        ...(p.imageSpan && { imageSpan: p.imageSpan }),
      });
      settled = true;
      return r;
    } catch (e) {
      settled = true;
      throw e;
    } finally {
      if (settled) p.embeds.dispose();
    }
  }

  /** generate() run to the end: { text, tokens, finishReason, usage } (usage counts the image tokens as prompt tokens). */
  async complete(input: VisionPrompt, opts: VlmGenerateOptions = {}): Promise<GenerateResult> {
    const it = this.generate(input, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** The language model's batching limits (image requests and text requests share them). */
  configureBatching(opts: SchedulerOptions): void {
    this.lm.configureBatching(opts);
  }

  get load(): BatchLoad {
    return this.lm.load;
  }

  /**
   * Editor sets (MRT's sites: encoder blocks, the projector, language-model layers) resident on the model;
   * requests name one with `editors`. They live on the language model's registry (text-only requests too).
   */
  loadEditors(dir: string, name: string, opts: ReadEditorsOptions = {}): Promise<void> {
    return this.lm.loadEditors(dir, name, opts);
  }

  attachEditors(name: string, set: EditorSet): void {
    this.lm.attachEditors(name, set);
  }

  detachEditors(name: string): void {
    this.lm.detachEditors(name);
  }

  get editorSets(): string[] {
    return this.lm.editorSets;
  }

  /** Frees every part's weights (requests in flight end with E_ARG). */
  dispose(): void {
    this.lm.dispose();
    this.encoder.dispose();
    const p = this.#projector;
    [p.w0, p.b0, p.w2, p.b2].forEach((t) => t?.dispose());
  }
}
