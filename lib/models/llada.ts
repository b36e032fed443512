// LLaDA / MMaDA masked-diffusion language models (LLaDAModelLM, block_type "llama"): a bidirectional
// transformer run as one native plan per call (embedding → per layer attention and gated MLP → ln_f →
// head), and LLaDA's sampler (lib/diffusion/) on top. Fast modes (K/V caches, threshold commit) are options
// of the same sampler; exact mode is the default.
import * as fs from 'fs';
import * as path from 'path';

import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { DiffusionOptions, resolveDiffusionOptions } from '../diffusion/options';
import { Denoiser, DenoiserCache, DenoiserCall, DiffusionResult, DiffusionStep, PickRequest, diffuse, padPrompts } from '../diffusion/sampler';
import { ImageGenOptions, ImageGenResult, ImageGenStep, maskgit, resolveImageGenOptions } from '../diffusion/maskgit';
import { MMADA_SPECIAL_TOKENS, MmadaLayout, mmuPrompt, t2iBatch } from '../diffusion/mmada-prompts';
import { LladaConfig, expectedLladaTensors } from '../io/llada-config';
import { Checkpoint, isRecord } from '../io/safetensors';
import { NativeModel, NativeTensor, addon, call } from '../native';
import * as ops from '../ops';
import { Device, Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import type { DiffusionLM, DiffusionOutput, DiffusionPrompt, DiffusionStepView } from './interfaces';
import type { MagvitTokenizer } from './magvit';
import type { ImageInput } from '../vision/preprocess';
import { EditableModel, EditorHost } from '../editors/host';
import { EditorChoice, callRows, editorEdits } from '../editors/passes';
import { editHandles } from './edits';
import { ModelState } from './state';
import { TokenBatch, tokenTensor } from './tokens';

export type { DiffusionOptions } from '../diffusion/options';

/** One generated image: PNG bytes, its code grid [height · width], forward passes used. */
export interface GeneratedImage {
  png: Buffer;
  codes: Int32Array;
  height: number;
  width: number;
  nfe: number;
  finishReason: 'length' | 'abort';
}

/** generation_config.json keys read as sampler defaults (call options win). */
function generationDefaults(json: unknown): { opts: DiffusionOptions; eos: number[] } {
  if (!isRecord(json)) return { opts: {}, eos: [] };
  const num = (k: string): number | undefined => (typeof json[k] === 'number' ? (json[k] as number) : undefined);
  const eos = json.eos_token_id;
  const remasking = json.remasking === 'low_confidence' || json.remasking === 'random' ? json.remasking : undefined;
  return {
    opts: {
      genLength: num('gen_length') ?? num('max_new_tokens'), blockLength: num('block_length'), steps: num('steps'),
      temperature: num('temperature'), cfgScale: num('cfg_scale'), threshold: num('threshold'), remasking,
    },
    eos: typeof eos === 'number' ? [eos] : Array.isArray(eos) ? eos.filter((e): e is number => typeof e === 'number') : [],
  };
}

export class LladaLM extends EditableModel implements DiffusionLM, Denoiser {
  readonly kind = 'diffusion' as const;
  readonly #native: NativeModel;
  readonly #weights: Tensor[];
  // editor sets: an editor of layer l edits the layer's output, after its MLP block (plan block 2l + 1)
  readonly #editors: EditorHost;
  /** The checkpoint's tokenizer.json, when it has one (set by loadModel). */
  tokenizer: Tokenizer | null = null;
  /** MMaDA's image tokenizer (MAGVIT-v2) for generateImage / understand: loadModel's `imageTokenizer` option, or set it. */
  imageTokenizer: MagvitTokenizer | null = null;
  /** Sampler defaults from generation_config.json (call options override them). */
  readonly defaults: DiffusionOptions;
  /** Ids that end the text: eos_token_id of config.json and generation_config.json. */
  readonly stopIds: ReadonlySet<number>;

  private constructor(readonly config: LladaConfig, readonly device: Device, readonly dtype: WeightDType, native: NativeModel,
    weights: Tensor[], gen: { opts: DiffusionOptions; eos: number[] }) {
    super();
    this.#native = native;
    this.#weights = weights;
    this.#editors = new EditorHost(() => ({
      hiddenSize: config.dModel, numLayers: config.nLayers, modelType: config.modelType, afterBlock: (l: number) => 2 * l + 1,
    }), device);
    this.defaults = gen.opts;
    this.stopIds = new Set([...gen.eos, ...(config.eosTokenId === null ? [] : [config.eosTokenId])]);
  }

  get modelType(): string { return this.config.modelType; }
  /** Columns of the logits (embedding_size). */
  get vocabSize(): number { return this.config.embeddingSize; }
  get logitsWidth(): number { return this.config.embeddingSize; }
  get maskId(): number { return this.config.maskTokenId; }
  get maxPositions(): number { return this.config.maxSequenceLength; }
  /** The native plan's blocks in order ('attention' | 'mlp'). */
  get blocks(): readonly string[] { return this.#native.blocks(); }

  /** Loads a validated checkpoint: GEMM weights and the embedding in `dtype`, norms f32. */
  static async load(cfg: LladaConfig, ckpt: Checkpoint, device: Device, dtype: WeightDType): Promise<LladaLM> {
    const owned: Tensor[] = [];
    try {
      const weights: Record<string, NativeTensor> = {};
      for (const t of expectedLladaTensors(cfg)) {
        let w: Tensor;
        if (cfg.scaleLogits && t.name === 'model.transformer.ln_f.weight') {
          // scale_logits multiplies the logits by 1/√d_model: folded into the final norm's weight
          const raw = await ckpt.load(t.name, { dtype: 'f32' });
          const v = Float32Array.from((await raw.data()) as Float32Array, (x) => x / Math.sqrt(cfg.dModel));
          raw.dispose();
          w = Tensor.from(v, [cfg.dModel], { device });
        } else {
          w = await ckpt.load(t.name, { dtype: t.gemm ? dtype : 'f32', device });
        }
        owned.push(w);
        weights[t.name] = w.handle;
      }
      const config = {
        d_model: cfg.dModel, n_heads: cfg.nHeads, n_kv_heads: cfg.nKvHeads, n_layers: cfg.nLayers, mlp_hidden: cfg.mlpHidden,
        eps: cfg.rmsNormEps, rope_theta: cfg.ropeTheta, max_positions: cfg.maxSequenceLength,
      };
      const native = call(() => addon.createModel('llada', config, weights, device));
      let gen: unknown;
      try {
        gen = JSON.parse(await fs.promises.readFile(path.join(ckpt.dir, 'generation_config.json'), 'utf8'));
      } catch {
        gen = null;  // optional file
      }
      return new LladaLM(cfg, device, dtype, native, owned, generationDefaults(gen));
    } catch (e) {
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  /**
   * Logits for every position, [B, T, V], of a full bidirectional pass (no state). attentionMask [B][T] (1 token,
   * 0 padding) drops the padded keys.
   */
  async forward(tokens: TokenBatch, opts: { attentionMask?: readonly (readonly number[])[]; editors?: EditorChoice } = {}): Promise<Tensor> {
    const t = tokenTensor(tokens, this.vocabSize, this.device, 'forward');
    const [B, T] = t.shape;
    let bias: Tensor | null = null, ed: ReturnType<typeof editHandles> | null = null;
    try {
      ed = editHandles(editorEdits(this.#editors.registry, 'block', callRows(opts.editors, B, T, 'forward'), 'prefill'), this.device);
      const edits = ed.edits;
      if (opts.attentionMask) {
        const m = opts.attentionMask;
        if (m.length !== B || m.some((r) => r.length !== T)) throw new MambakitError('E_SHAPE', `forward: attentionMask must be [${B}][${T}]`);
        bias = Tensor.from(Float32Array.from(m.flat(), (v) => (v ? 0 : -Infinity)), [B, T], { device: this.device });
      }
      return Tensor.fromHandle(await call(() => this.#native.forward({ input: t.handle, mode: 'forward', keyBias: bias?.handle ?? null, ...(edits.length && { edits }) })));
    } finally {
      t.dispose();
      bias?.dispose();
      ed?.owned.forEach((x) => x.dispose());
    }
  }

  /** @internal Denoiser: a K/V cache of `rows` sequences of `context` positions. */
  newCache(rows: number, context: number): DenoiserCache {
    return new ModelState(call(() => this.#native.newState(rows, context)));
  }

  // One positional forward of the plan: logits [rows, logitsCount, V] (the caller disposes them).
  async #forward(c: DenoiserCall): Promise<Tensor> {
    const { edits, owned } = editHandles(editorEdits(this.#editors.registry, 'block', c.editors ?? null, 'prefill'), this.device);
    const ids = Tensor.from(c.ids, [c.rows, c.n], { device: this.device });
    const bias = c.keyBias ? Tensor.from(c.keyBias, [c.rows, c.keys], { device: this.device }) : null;
    try {
      return Tensor.fromHandle(await call(() => this.#native.forward({
        input: ids.handle, mode: 'forward', state: c.cache ? (c.cache as ModelState).handle : null,
        offset: c.offset, keys: c.keys, keyBias: bias?.handle ?? null, logitsFrom: c.logitsFrom, logitsCount: c.logitsCount,
        ...(edits.length && { edits }),
      })));
    } finally {
      ids.dispose();
      bias?.dispose();
      owned.forEach((t) => t.dispose());
    }
  }

  protected override get editorHost(): EditorHost {
    return this.#editors;
  }

  // Holds the run's editor sets from its first step to its end (a detach meanwhile waits for it).
  async *#holding<T, R>(names: readonly (string | null)[], run: () => AsyncGenerator<T, R>): AsyncGenerator<T, R> {
    const held: string[] = [];
    try {
      for (const n of new Set(names)) if (n !== null) { this.#editors.registry.acquire(n); held.push(n); }
      return yield* run();
    } finally {
      held.forEach((n) => this.#editors.registry.release(n));
    }
  }

  /** The logits of one sampler call, [rows, logitsCount, V] flattened (research and tests). */
  async logits(c: DenoiserCall): Promise<Float32Array> {
    const t = await this.#forward(c);
    try {
      return (await t.data()) as Float32Array;
    } finally {
      t.dispose();
    }
  }

  /** @internal Denoiser: one forward, then the picks at the masked positions (csrc/core/denoise.h), off the JS thread. */
  async predict(c: DenoiserCall, p: PickRequest): Promise<{ x0: Int32Array; conf: Float64Array }> {
    const logits = await this.#forward(c);
    const positions = Tensor.from(p.positions, [p.positions.length], { device: this.device });
    try {
      // positions index the logits' rows [rows · logitsCount, V]; guidance: the second half are the twins
      return await ops.denoisePick(logits, positions, {
        uncondOffset: p.guided ? (c.rows / 2) * c.logitsCount : undefined, cfg: p.cfgScale, temperature: p.temperature,
        random: p.random, seed: p.seed, step: p.step, columns: p.columns,
      });
    } finally {
      positions.dispose();
      logits.dispose();
    }
  }

  #ids(prompt: DiffusionPrompt): number[] {
    if (typeof prompt === 'string') {
      if (!this.tokenizer) throw new MambakitError('E_ARG', 'generate: this model has no tokenizer.json; pass token ids');
      return this.tokenizer.encode(prompt);
    }
    if (!Array.isArray(prompt) && !(prompt instanceof Int32Array)) throw new MambakitError('E_ARG', 'generate: a prompt is a string or token ids');
    return Array.from(prompt as ArrayLike<number>);
  }

  /**
   * Token level: denoises after each prompt (left-padded into one batch), yielding every step; returns the
   * sequences [B, P + genLength]. For research and tests; generate() / steps() are the text API.
   */
  diffuse(prompts: readonly (readonly number[] | Int32Array)[], opts: DiffusionOptions = {}): AsyncGenerator<DiffusionStep, DiffusionResult> {
    const o = resolveDiffusionOptions(opts, this.defaults);
    const pad = this.config.padTokenId ?? this.config.eosTokenId ?? 0;
    if (pad === this.maskId) throw new MambakitError('E_FORMAT', `${this.modelType}: pad token id equals the mask id ${pad}`);
    const names = o.editors === null ? [] : typeof o.editors === 'string' ? [o.editors] : o.editors;
    return this.#holding(names, () => diffuse(this, padPrompts(prompts, pad, this.maskId), o));
  }

  // The generated ids of row b and their text (cut at the first stop id).
  #output(r: { ids: Int32Array; length: number }, b: number, P: number, promptTokens: number, nfe: number, finishReason: 'length' | 'abort'): DiffusionOutput {
    const ids = Array.from(r.ids.subarray(b * r.length + P, (b + 1) * r.length));
    const end = ids.findIndex((id) => this.stopIds.has(id));
    const tokens = end < 0 ? ids : ids.slice(0, end);
    const text = this.tokenizer ? this.tokenizer.decode(tokens.filter((id) => id !== this.maskId), { skipSpecialTokens: true }) : null;
    return { text, ids, tokens, nfe, finishReason, usage: { promptTokens, completionTokens: tokens.length } };
  }

  /** Iterates the denoising of a batch of prompts: each step's sequences (for a UI) and, at the end, the outputs. */
  async *steps(prompts: readonly DiffusionPrompt[], opts: DiffusionOptions = {}): AsyncGenerator<DiffusionStepView, DiffusionOutput[]> {
    const lists = prompts.map((p) => this.#ids(p));
    const it = this.diffuse(lists, opts);
    const P = Math.max(...lists.map((l) => l.length));
    for (;;) {
      const s = await it.next();
      if (s.done) return lists.map((l, b) => this.#output(s.value, b, P, l.length, s.value.nfe, s.value.finishReason));
      const L = s.value.ids.length / lists.length;
      yield {
        block: s.value.block, step: s.value.step, nfe: s.value.nfe, committed: s.value.committed, final: s.value.final,
        ids: lists.map((_, b) => Array.from(s.value.ids.subarray(b * L + P, (b + 1) * L))),
      };
    }
  }

  /** Generates after one prompt (text needs the tokenizer; ids always work). */
  async generate(prompt: DiffusionPrompt, opts: DiffusionOptions = {}): Promise<DiffusionOutput> {
    return (await this.generateBatch([prompt], opts))[0];
  }

  /** Generates after several prompts in one batch (left-padded; padding never attended to). */
  async generateBatch(prompts: readonly DiffusionPrompt[], opts: DiffusionOptions = {}): Promise<DiffusionOutput[]> {
    const it = this.steps(prompts, opts);
    for (;;) {
      const s = await it.next();
      if (s.done) return s.value;
    }
  }

  /**
   * MMaDA's token layout: image codes after the text vocabulary (config.json llm_vocab_size, codebook_size,
   * num_vq_tokens), the reserved special tokens, bos/eos from the tokenizer (or `ids`). E_ARG for a model
   * without image tokens (text-only LLaDA).
   */
  imageLayout(opts: { maxTextLen?: number; bos?: number; eos?: number } = {}): MmadaLayout {
    const c = this.config;
    if (c.codebookSize === null || c.numVqTokens === null)
      throw new MambakitError('E_ARG', `${c.modelType}: config.json has no codebook_size / num_vq_tokens: this model has no image tokens (MMaDA has)`);
    const bos = opts.bos ?? this.tokenizer?.bosTokenId ?? null, eos = opts.eos ?? this.tokenizer?.eosTokenId ?? c.eosTokenId;
    if (bos === null || eos === null) throw new MambakitError('E_ARG', `${c.modelType}: bos / eos ids unknown (no tokenizer): pass them`);
    const maxTextLen = opts.maxTextLen ?? 512;
    if (!(Number.isInteger(maxTextLen) && maxTextLen >= 2)) throw new MambakitError('E_ARG', `t2i: maxTextLen must be an integer ≥ 2, got ${maxTextLen}`);
    const { soi, eoi, t2i, mmu, ipad } = MMADA_SPECIAL_TOKENS;
    return { llmVocabSize: c.llmVocabSize, codebookSize: c.codebookSize, imageTokens: c.numVqTokens, maxTextLen, bos, eos, maskId: this.maskId,
      special: { soi, eoi, t2i, mmu, ipad } };
  }

  /**
   * Token level text-to-image (MMaDA's MaskGIT, lib/diffusion/maskgit.ts): prompts (text or ids) → image codes
   * [B, num_vq_tokens], every step yielded. The unconditional prompt of guidance is the empty text.
   */
  imageTokens(prompts: readonly DiffusionPrompt[], opts: ImageGenOptions & { maxTextLen?: number; bos?: number; eos?: number } = {}): AsyncGenerator<ImageGenStep, ImageGenResult> {
    const o = resolveImageGenOptions(opts);
    const m = this.imageLayout(opts);
    const texts = prompts.map((p) => this.#ids(p));
    const L = m.maxTextLen + 1 + m.imageTokens + 2;
    if (L > this.maxPositions) throw new MambakitError('E_ARG', `t2i: ${L} positions (text ${m.maxTextLen + 1} + image ${m.imageTokens + 2}) exceed the model's ${this.maxPositions}`);
    const uncond = o.guidance > 0 ? t2iBatch(texts.map(() => []), m) : null;
    return maskgit(this, m, t2iBatch(texts, m), uncond, o);
  }

  /** The mmu prompt for image codes and a question (ids as given, e.g. the chat-templated turn), for generate(). */
  understandingPrompt(codes: readonly number[], question: DiffusionPrompt): number[] {
    return mmuPrompt(codes, this.#ids(question), this.imageLayout());
  }

  // The image grid of num_vq_tokens (square, as MMaDA's decode_code assumes) and the tokenizer that maps it.
  #grid(what: string): { tok: MagvitTokenizer; side: number } {
    const tok = this.imageTokenizer;
    if (!tok) throw new MambakitError('E_ARG', `${what}: no image tokenizer (load one with loadImageTokenizer and set model.imageTokenizer, or pass loadModel's imageTokenizer)`);
    const N = this.imageLayout({ bos: 0, eos: 0 }).imageTokens, side = Math.round(Math.sqrt(N));
    if (side * side !== N) throw new MambakitError('E_ARG', `${what}: num_vq_tokens ${N} is not a square grid`);
    if (tok.codebookSize !== this.config.codebookSize)
      throw new MambakitError('E_ARG', `${what}: the image tokenizer has ${tok.codebookSize} codes, the model ${String(this.config.codebookSize)}`);
    return { tok, side };
  }

  /**
   * Text to images: MMaDA's MaskGIT (imageTokens) then the image tokenizer's decoder; each step yielded, with
   * PNG previews of its draws when `previews` is set; returns one image per prompt.
   */
  async *imageSteps(prompts: readonly DiffusionPrompt[], opts: ImageGenOptions & { maxTextLen?: number; bos?: number; eos?: number; previews?: boolean } = {}):
    AsyncGenerator<ImageGenStep & { previews?: Buffer[] }, GeneratedImage[]> {
    const { tok, side } = this.#grid('generateImage');
    const it = this.imageTokens(prompts, opts);
    for (;;) {
      const s = await it.next();
      if (s.done) {
        const r = s.value;
        const pngs = await tok.decodeToPng(r.codes, r.B, side, side);
        return pngs.map((png, b) => ({ png, codes: r.codes.slice(b * r.N, (b + 1) * r.N), height: side, width: side, nfe: r.nfe, finishReason: r.finishReason }));
      }
      yield opts.previews ? { ...s.value, previews: await tok.decodeToPng(s.value.codes, prompts.length, side, side) } : s.value;
    }
  }

  /** One image for one prompt (see imageSteps). */
  async generateImage(prompt: DiffusionPrompt, opts: ImageGenOptions & { maxTextLen?: number; bos?: number; eos?: number } = {}): Promise<GeneratedImage> {
    const it = this.imageSteps([prompt], opts);
    for (;;) {
      const s = await it.next();
      if (s.done) return s.value[0];
    }
  }

  /**
   * Image understanding (inference_mmu.py): the image → codes (resized and center-cropped to the model's grid)
   * → `<|mmu|> <|soi|> image <|eoi|> question` → LLaDA's text sampler → the answer.
   */
  async understand(image: ImageInput, question: DiffusionPrompt, opts: DiffusionOptions & { resize?: 'crop' | 'squash' } = {}): Promise<DiffusionOutput> {
    const { tok, side } = this.#grid('understand');
    const { resize, ...rest } = opts;
    const codes = await tok.encodeImages([image], { resolution: side * tok.config.downsample, resize });
    return this.generate(this.understandingPrompt(Array.from(codes.codes), question), rest);
  }

  /** Frees the weights (and the image tokenizer's). */
  dispose(): void {
    this.imageTokenizer?.dispose();
    this.#editors.dispose();
    this.#native.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}
