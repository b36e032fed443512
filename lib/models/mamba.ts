// Mamba-family language models — dense Mamba-1 (FORMATS.md §1), MoE-Mamba (§2) and Mixture-of-Mamba
// (§3) — loaded from checkpoints and run as one native plan per call (embedding → L blocks → norm_f →
// lm_head), with no crossing back to JS between ops. A Mamba block is rmsnorm → in_proj → conv →
// x_proj → dt_proj → scan → out_proj (projections per modality in Mixture-of-Mamba); a MoE block is
// rmsnorm → router → top-k → grouped expert FFNs → weighted combine.
import { MambakitError } from '../errors';
import { ExpertActivation, MambaConfig } from '../io/mamba-config';
import { Checkpoint } from '../io/safetensors';
import { MambaLayerHandles, NativeModel, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import { BatchScheduler, SchedulerOptions } from '../generate/scheduler';
import type { Tokenizer } from '../tokenizer';
import { ModalityBatch, TokenBatch, modalityTensor, tokenTensor } from './tokens';

export type WeightDType = 'f32' | 'f16' | 'bf16';

// Expert activations as the native plan numbers them (Act in csrc/cpu/sparse.h; SwiGLU is kSwiGLU).
const ACT_IDS: Record<ExpertActivation, number> = { relu: 1, gelu: 2, silu: 3, swiglu: 100 };

/** Per-call options of forward / prefill / step. */
export interface MambaCallOptions {
  /**
   * Modality id (or name from config.modality_names) per token: [B][T] for forward/prefill, [B] for
   * step. Mixture-of-Mamba only; a model with one modality defaults to it.
   */
  modalities?: ModalityBatch;
}

/** Recurrent state of `batch` sequences: conv windows [Lm, B, K-1, E] and SSM states [Lm, B, N, E] for the Lm Mamba blocks. */
export class MambaState {
  constructor(readonly conv: Tensor, readonly ssm: Tensor, readonly batch: number) {}
  dispose(): void {
    this.conv.dispose();
    this.ssm.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export class MambaLM {
  readonly #native: NativeModel;
  readonly #weights: Tensor[];
  readonly #counts: Tensor | null;
  /** The checkpoint's tokenizer.json, when it has one (set by loadModel). */
  tokenizer: Tokenizer | null = null;
  #scheduler: BatchScheduler | null = null;

  private constructor(
    readonly config: MambaConfig,
    readonly vocabSize: number,
    readonly device: Device,
    readonly dtype: WeightDType,
    native: NativeModel,
    weights: Tensor[],
    counts: Tensor | null,
  ) {
    this.#native = native;
    this.#weights = weights;
    this.#counts = counts;
  }

  /** Number of Mamba blocks (the ones that keep recurrent state). */
  get stateLayers(): number {
    return this.config.layerTypes.filter((t) => t === 'mamba').length;
  }

  /**
   * Tokens routed to each expert, per MoE block ([block][expert]), summed over every call since load
   * (MoE-Mamba; empty otherwise). Take two snapshots and subtract for one run's load histogram.
   */
  async expertLoad(): Promise<number[][]> {
    if (!this.#counts) return [];
    const [blocks, experts] = this.#counts.shape;
    const c = await this.#counts.data();
    return Array.from({ length: blocks }, (_, b) => Array.from(c.subarray(b * experts, (b + 1) * experts)));
  }

  /** Whether calls need a modality per token: Mixture-of-Mamba with 2+ modalities and a per-modality projection. */
  get usesModalities(): boolean {
    const mc = this.config.modalities;
    return mc !== null && mc.count > 1 && mc.specific.length > 0;
  }

  // i32 modality ids shaped like the tokens, or null when the model does not read them (ids given to
  // a Mixture-of-Mamba that does not need them are still checked).
  #modalities(opts: MambaCallOptions | undefined, shape: readonly number[], what: string): Tensor | null {
    const mc = this.config.modalities;
    if (!mc) {
      if (opts?.modalities !== undefined)
        throw new MambakitError('E_ARG', `${what}: modalities given, but this ${this.config.modelType} model has none (Mixture-of-Mamba only)`);
      return null;
    }
    if (opts?.modalities === undefined) {
      if (!this.usesModalities) return null;
      throw new MambakitError('E_ARG', `${what}: this Mixture-of-Mamba model needs modalities (one of ${mc.names.join(', ')} per token)`);
    }
    const t = modalityTensor(opts.modalities, mc.names, shape, this.device, what);
    if (this.usesModalities) return t;
    t.dispose();
    return null;
  }

  /** Loads every tensor (GEMM weights and the embedding in `dtype`, the rest f32) onto `device`. */
  static async load(cfg: MambaConfig, ckpt: Checkpoint, V: number, device: Device, dtype: WeightDType): Promise<MambaLM> {
    const D = cfg.hiddenSize, E = cfg.intermediateSize, N = cfg.stateSize;
    const owned: Tensor[] = [];
    const load = async (name: string, dt: WeightDType): Promise<Tensor> => {
      const t = await ckpt.load(name, { dtype: dt, device });
      owned.push(t);
      return t;
    };
    const opt = async (name: string, dt: WeightDType): Promise<Tensor | null> => (ckpt.has(name) ? load(name, dt) : null);
    try {
      const embedding = await load('backbone.embeddings.weight', dtype);
      const lmHead = cfg.tieWordEmbeddings || !ckpt.has('lm_head.weight') ? embedding : await load('lm_head.weight', dtype);
      const layers: MambaLayerHandles[] = [];
      for (let i = 0; i < cfg.numLayers; ++i) {
        const p = `backbone.layers.${i}.`;
        if (cfg.layerTypes[i] === 'moe') {
          layers.push({
            kind: 1,
            norm: (await load(`${p}norm.weight`, 'f32')).handle,
            router: (await load(`${p}moe.router.weight`, 'f32')).handle, // f32 in every dtype: routing must not flip
            w_in: (await load(`${p}moe.experts.w_in`, dtype)).handle,
            w_out: (await load(`${p}moe.experts.w_out`, dtype)).handle,
          });
          continue;
        }
        // A = −exp(A_log), stored transposed [N, E] so the scan reads channels contiguously
        const aLog = await ckpt.load(`${p}mixer.A_log`, { dtype: 'f32' });
        const a = (await aLog.data()) as Float32Array;
        aLog.dispose();
        const At = new Float32Array(N * E);
        for (let e = 0; e < E; ++e) for (let n = 0; n < N; ++n) At[n * E + e] = -Math.exp(a[e * N + n]);
        const A = Tensor.from(At, [N, E], { device });
        owned.push(A);
        layers.push({
          kind: 0,
          norm: (await load(`${p}norm.weight`, 'f32')).handle,
          in_proj: (await load(`${p}mixer.in_proj.weight`, dtype)).handle,
          in_proj_bias: (await opt(`${p}mixer.in_proj.bias`, 'f32'))?.handle ?? null,
          conv_w: (await load(`${p}mixer.conv1d.weight`, 'f32')).handle,
          conv_b: (await opt(`${p}mixer.conv1d.bias`, 'f32'))?.handle ?? null,
          x_proj: (await load(`${p}mixer.x_proj.weight`, dtype)).handle,
          dt_proj: (await load(`${p}mixer.dt_proj.weight`, dtype)).handle,
          dt_bias: (await load(`${p}mixer.dt_proj.bias`, 'f32')).handle,
          A: A.handle,
          D: (await load(`${p}mixer.D`, 'f32')).handle,
          out_proj: (await load(`${p}mixer.out_proj.weight`, dtype)).handle,
          out_proj_bias: (await opt(`${p}mixer.out_proj.bias`, 'f32'))?.handle ?? null,
        });
      }
      const moeLayers = cfg.layerTypes.filter((t) => t === 'moe').length;
      const moe = cfg.moe;
      let counts: Tensor | null = null;
      if (moe && moeLayers > 0) {
        counts = Tensor.from(new Int32Array(moeLayers * moe.numExperts), [moeLayers, moe.numExperts], { device });
        owned.push(counts);
      }
      const normF = await load('backbone.norm_f.weight', 'f32');
      const native = call(() => addon.mambaCreate(
        {
          D, L: cfg.numLayers, V, N, E, K: cfg.convKernel, R: cfg.timeStepRank, eps: cfg.layerNormEpsilon,
          M: cfg.modalities?.count ?? 1, Ne: moe?.numExperts ?? 0, topk: moe?.topK ?? 0, F: moe?.intermediateSize ?? 0,
          act: moe ? ACT_IDS[moe.activation] : 0, renorm: moe?.renormalize ? 1 : 0,
        },
        { embedding: embedding.handle, lm_head: lmHead.handle, norm_f: normF.handle, expert_counts: counts?.handle ?? null, layers },
        device,
      ));
      return new MambaLM(cfg, V, device, dtype, native, owned, counts);
    } catch (e) {
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  // Token ids → a fresh i32 tensor (owned); an f32 [B, T, D] Tensor of input embeddings passes through.
  #inputs(tokens: TokenBatch | Tensor, what: string): { t: Tensor; owned: boolean } {
    if (!(tokens instanceof Tensor)) return { t: tokenTensor(tokens, this.vocabSize, this.device, what), owned: true };
    const D = this.config.hiddenSize;
    if (tokens.dtype !== 'f32' || tokens.shape.length !== 3 || tokens.shape[2] !== D || tokens.shape[0] < 1 || tokens.shape[1] < 1)
      throw new MambakitError('E_SHAPE', `${what}: input embeddings must be an f32 Tensor [B, T, ${D}], got ${tokens.dtype} [${tokens.shape.join(', ')}]`);
    return { t: tokens, owned: false };
  }

  /**
   * Logits for every position: [B, T, V]. No state is kept. Inputs are token ids, or input embeddings
   * (an f32 Tensor [B, T, D], e.g. continuous image latents as in the Transfusion setting).
   */
  async forward(tokens: TokenBatch | Tensor, opts?: MambaCallOptions): Promise<Tensor> {
    const { t, owned } = this.#inputs(tokens, 'forward');
    let m: Tensor | null = null;
    try {
      m = this.#modalities(opts, t.shape, 'forward');
      const mh = m?.handle ?? null;
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, mh, null, null, null, false, false)));
    } finally {
      if (owned) t.dispose();
      m?.dispose();
    }
  }

  /** A fresh (zero) state for `batch` sequences. */
  newState(batch: number): MambaState {
    if (!Number.isInteger(batch) || batch < 1) throw new MambakitError('E_ARG', `newState: batch must be a positive integer, got ${batch}`);
    const { convKernel: K, intermediateSize: E, stateSize: N } = this.config;
    const L = this.stateLayers;
    const conv = Tensor.from(new Float32Array(L * batch * (K - 1) * E), [L, batch, K - 1, E], { device: this.device });
    const ssm = Tensor.from(new Float32Array(L * batch * N * E), [L, batch, N, E], { device: this.device });
    return new MambaState(conv, ssm, batch);
  }

  /**
   * Runs the prompts through, advancing `state`; returns the last position's logits [B, V]. With
   * `slots`, row b uses the state of sequence slots[b] (see step()).
   */
  async prefill(tokens: TokenBatch | Tensor, state: MambaState, opts: MambaCallOptions & { slots?: readonly number[] | Int32Array } = {}): Promise<Tensor> {
    const { t, owned } = this.#inputs(tokens, 'prefill');
    let slots: Tensor | null = null, m: Tensor | null = null;
    try {
      slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, t.shape[0], state, 'prefill');
      m = this.#modalities(opts, t.shape, 'prefill');
      const [sh, mh] = [slots?.handle ?? null, m?.handle ?? null];
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, mh, state.conv.handle, state.ssm.handle, sh, true, false)));
    } finally {
      if (owned) t.dispose();
      slots?.dispose();
      m?.dispose();
    }
  }

  // Distinct slots in [0, state.batch), one per row: else E_SHAPE / E_ARG.
  #slotTensor(sl: readonly number[] | Int32Array, rows: number, state: MambaState, what: string): Tensor {
    const ids = Int32Array.from(sl);
    if (ids.length !== rows) throw new MambakitError('E_SHAPE', `${what}: ${ids.length} slots for ${rows} sequences`);
    const seen = new Set<number>();
    for (const v of ids) {
      if (!(v >= 0 && v < state.batch) || seen.has(v)) throw new MambakitError('E_ARG', `${what}: slot ${v} is out of [0, ${state.batch}) or repeated`);
      seen.add(v);
    }
    return Tensor.from(ids, [ids.length], { device: this.device });
  }

  /**
   * One token per sequence ([B] ids), advancing `state`; returns logits [B, V]. With `slots`, row b
   * uses the state of sequence slots[b] (distinct, in [0, state.batch)): a continuous-batching
   * scheduler steps any subset of its sequences without moving their states.
   */
  async step(
    tokenIds: readonly number[] | Int32Array, state: MambaState,
    opts: { slots?: readonly number[] | Int32Array; modalities?: readonly (number | string)[] | Int32Array } = {},
  ): Promise<Tensor> {
    const ids = Int32Array.from(tokenIds);
    const t = tokenTensor({ data: ids, shape: [ids.length, 1] }, this.vocabSize, this.device, 'step');
    let slots: Tensor | null = null, m: Tensor | null = null;
    try {
      slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, ids.length, state, 'step');
      const mods = opts.modalities === undefined ? undefined : Array.from(opts.modalities as ArrayLike<number | string>, (v) => [v]);
      m = this.#modalities({ modalities: mods }, t.shape, 'step');
      const [sh, mh] = [slots?.handle ?? null, m?.handle ?? null];
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, mh, state.conv.handle, state.ssm.handle, sh, true, true)));
    } finally {
      t.dispose();
      slots?.dispose();
      m?.dispose();
    }
  }

  /**
   * Streams generated text for a prompt (text needs the tokenizer; token ids always work). Ends on
   * EOS, a stop string (not emitted), maxTokens or the AbortSignal; the return value summarizes.
   * Concurrent calls share batched decode steps (continuous batching, see configureBatching).
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult> {
    this.#scheduler ??= new BatchScheduler(this);
    return this.#scheduler.generate(this.tokenizer, prompt, opts);
  }

  /** generate() run to the end: { text, tokens, finishReason, usage }. */
  async complete(prompt: string | readonly number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Sets the batch size limit (= state slots) and the waiting-queue bound; before or between uses. */
  configureBatching(opts: SchedulerOptions): void {
    if (this.#scheduler && (this.#scheduler.load.running > 0 || this.#scheduler.load.waiting > 0))
      throw new MambakitError('E_ARG', 'configureBatching: requests are running');
    this.#scheduler?.dispose();
    this.#scheduler = new BatchScheduler(this, opts);
  }

  /** Running and waiting requests of the batch scheduler. */
  get load(): { running: number; waiting: number; freeSlots: number } {
    return this.#scheduler?.load ?? { running: 0, waiting: 0, freeSlots: 0 };
  }

  /** Frees the weights. */
  dispose(): void {
    this.#scheduler?.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}
