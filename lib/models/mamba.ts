// Mamba-family language models — dense Mamba-1 (FORMATS.md §1), MoE-Mamba (§2) and Mixture-of-Mamba
// (§3) — loaded from checkpoints and run as one native plan per call (embedding → L blocks → norm_f →
// lm_head), with no crossing back to JS between ops. A Mamba block is rmsnorm → in_proj → conv →
// x_proj → dt_proj → scan → out_proj (projections per modality in Mixture-of-Mamba); a MoE block is
// rmsnorm → router → top-k → grouped expert FFNs → weighted combine.
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { RecurrentLMBase } from '../generate/recurrent-base';
import { MambaConfig } from '../io/mamba-config';
import { Checkpoint } from '../io/safetensors';
import { NativeCall, NativeModel, NativeTensor, addon, call } from '../native';
import { embedding } from '../ops';
import { Device, Tensor } from '../tensor';
import { EditorChoice, callRows, editorEdits } from '../editors/passes';
import type { EditSites } from '../editors/registry';
import { ResidualEdit, forwardWithEdits } from './edits';
import type { LanguageModelCallOptions, PrefillOptions, StepOptions } from './interfaces';
import { ModelState } from './state';
import { TokenBatch, modalityTensor, tokenTensor } from './tokens';

/** @deprecated moved to lib/dtype.ts; re-exported here for old imports. */
export type { WeightDType } from '../dtype';

/** Per-call options of forward / prefill (the LanguageModel ones). */
export type MambaCallOptions = LanguageModelCallOptions;

/** The recurrent state of a Mamba-family model (conv windows and SSM states of its Mamba blocks). */
export { ModelState as MambaState } from './state';

/** A dense Mamba, MoE-Mamba or Mixture-of-Mamba language model (generate / batching from RecurrentLMBase). */
export class MambaLM extends RecurrentLMBase<ModelState> {
  override readonly kind = 'language' as const;
  readonly #native: NativeModel;
  readonly #weights: Tensor[];
  readonly #embeddings: Tensor; // backbone.embeddings.weight [V, D], also in #weights

  private constructor(
    readonly config: MambaConfig,
    override readonly vocabSize: number,
    override readonly device: Device,
    override readonly dtype: WeightDType,
    native: NativeModel,
    weights: Tensor[],
    embeddings: Tensor,
  ) {
    super();
    this.#native = native;
    this.#weights = weights;
    this.#embeddings = embeddings;
  }

  /** config.json's model_type: 'mamba', 'moe_mamba' or 'mixture_of_mamba'. */
  override get modelType(): string {
    return this.config.modelType;
  }

  /** The modality names of a Mixture-of-Mamba model (ids are their indices); null for the others. */
  override get modalityNames(): readonly string[] | null {
    return this.config.modalities?.names ?? null;
  }

  /** The native plan's blocks in order ('mamba' | 'moe'): the indices edits refer to. */
  get blocks(): readonly string[] {
    return this.#native.blocks();
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
    const h = this.#native.counters();
    if (!h) return [];
    const counts = Tensor.fromHandle(h); // shares the plan's counters; disposing the view leaves them
    try {
      const [blocks, experts] = counts.shape;
      const c = await counts.data();
      return Array.from({ length: blocks }, (_, b) => Array.from(c.subarray(b * experts, (b + 1) * experts)));
    } finally {
      counts.dispose();
    }
  }

  /** Whether calls need a modality per token: Mixture-of-Mamba with 2+ modalities and a per-modality projection. */
  override get usesModalities(): boolean {
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

  /**
   * Loads every tensor (GEMM weights and the embedding in `dtype`, the rest f32) onto `device`. With a
   * `prefix` (a VLM's 'language_model.') the checkpoint's names carry it.
   */
  static async load(cfg: MambaConfig, ckpt: Checkpoint, V: number, device: Device, dtype: WeightDType, prefix = ''): Promise<MambaLM> {
    const D = cfg.hiddenSize, E = cfg.intermediateSize, N = cfg.stateSize;
    const owned: Tensor[] = [];
    const load = async (name: string, dt: WeightDType): Promise<Tensor> => {
      const t = await ckpt.load(prefix + name, { dtype: dt, device });
      owned.push(t);
      return t;
    };
    try {
      const weights: Record<string, NativeTensor> = {};
      const put = async (name: string, dt: WeightDType): Promise<Tensor> => {
        const t = await load(name, dt);
        weights[name] = t.handle;
        return t;
      };
      const putOpt = async (name: string, dt: WeightDType): Promise<void> => { if (ckpt.has(prefix + name)) await put(name, dt); };
      const embeddings = await put('backbone.embeddings.weight', dtype);
      if (!cfg.tieWordEmbeddings && ckpt.has(prefix + 'lm_head.weight')) await put('lm_head.weight', dtype);
      await put('backbone.norm_f.weight', 'f32');
      for (let i = 0; i < cfg.numLayers; ++i) {
        const p = `backbone.layers.${i}.`;
        await put(`${p}norm.weight`, 'f32');
        if (cfg.layerTypes[i] === 'moe') {
          await put(`${p}moe.router.weight`, 'f32'); // f32 in every dtype: routing decisions must not flip
          await put(`${p}moe.experts.w_in`, dtype);
          await put(`${p}moe.experts.w_out`, dtype);
          continue;
        }
        // mixer.A = −exp(A_log), stored transposed [N, E] so the scan reads channels contiguously
        const aLog = await ckpt.load(`${prefix}${p}mixer.A_log`, { dtype: 'f32' });
        const a = (await aLog.data()) as Float32Array;
        aLog.dispose();
        const At = new Float32Array(N * E);
        for (let e = 0; e < E; ++e) for (let n = 0; n < N; ++n) At[n * E + e] = -Math.exp(a[e * N + n]);
        const A = Tensor.from(At, [N, E], { device });
        owned.push(A);
        weights[`${p}mixer.A`] = A.handle;
        for (const w of ['in_proj', 'x_proj', 'dt_proj', 'out_proj']) await put(`${p}mixer.${w}.weight`, dtype);
        for (const b of ['in_proj', 'out_proj', 'conv1d']) await putOpt(`${p}mixer.${b}.bias`, 'f32');
        await put(`${p}mixer.dt_proj.bias`, 'f32');
        await put(`${p}mixer.conv1d.weight`, 'f32');
        await put(`${p}mixer.D`, 'f32');
      }
      const moe = cfg.moe;
      const config = {
        d_model: D, n_layer: cfg.numLayers, d_state: N, d_inner: E, d_conv: cfg.convKernel, dt_rank: cfg.timeStepRank,
        eps: cfg.layerNormEpsilon, layer_types: cfg.layerTypes, modalities: cfg.modalities?.count ?? 1,
        experts: moe?.numExperts, top_k: moe?.topK, expert_hidden: moe?.intermediateSize, activation: moe?.activation,
        renormalize: moe?.renormalize,
      };
      const native = call(() => addon.createModel('mamba', config, weights, device));
      return new MambaLM(cfg, V, device, dtype, native, owned, embeddings);
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
  override async forward(tokens: TokenBatch | Tensor, opts?: MambaCallOptions): Promise<Tensor> {
    const { t, owned } = this.#inputs(tokens, 'forward');
    let m: Tensor | null = null;
    try {
      m = this.#modalities(opts, t.shape, 'forward');
      return await this.#run({ input: t.handle, modality: m?.handle ?? null, mode: 'forward' }, opts, t.shape);
    } finally {
      if (owned) t.dispose();
      m?.dispose();
    }
  }

  /**
   * The embedding table's rows for token ids: f32 [B, T, D], the input embeddings forward / prefill take
   * (the same values the plan's own embedding gives the ids: a VLM puts image features between them).
   */
  async embed(tokens: TokenBatch): Promise<Tensor> {
    const t = tokenTensor(tokens, this.vocabSize, this.device, 'embed');
    try {
      return await embedding(t, this.#embeddings);
    } finally {
      t.dispose();
    }
  }

  /** A fresh (zero) state for `batch` sequences. */
  override newState(batch: number): ModelState {
    if (!Number.isInteger(batch) || batch < 1) throw new MambakitError('E_ARG', `newState: batch must be a positive integer, got ${batch}`);
    return new ModelState(call(() => this.#native.newState(batch)));
  }

  /** @internal Set by a model built around this one (a VLM): its other edit sites and its model_type. */
  partOf: Pick<EditSites, 'encoder' | 'projector' | 'modelType'> | null = null;

  protected override editSites(): EditSites {
    return { hiddenSize: this.config.hiddenSize, numLayers: this.blocks.length, modelType: this.modelType, ...this.partOf };
  }

  // One native call with the caller's residual-stream edits (token rows b·T + t of this call) and the
  // passes of the editor sets it names (prefill editors on [B, T] prompts; decode editors on steps).
  async #run(c: NativeCall, opts: { edits?: readonly ResidualEdit[]; editors?: EditorChoice; imageSpans?: LanguageModelCallOptions['imageSpans'] } | undefined,
    shape: readonly number[]): Promise<Tensor> {
    const decode = c.mode === 'step';
    const rows = callRows(opts?.editors, shape[0], decode ? 1 : shape[1], c.mode, opts?.imageSpans?.map((s) => (s ? { imageSpan: s } : undefined)));
    const all = [...(opts?.edits ?? []), ...editorEdits(this.editorRegistry, 'block', rows, decode ? 'decode' : 'prefill')];
    return forwardWithEdits(this.#native, c, all, this.device);
  }

  /**
   * Runs the prompts through, advancing `state`; returns the last position's logits [B, V]. With
   * `slots`, row b uses the state of sequence slots[b] (see step()).
   */
  override async prefill(tokens: TokenBatch | Tensor, state: ModelState, opts: PrefillOptions = {}): Promise<Tensor> {
    const { t, owned } = this.#inputs(tokens, 'prefill');
    let slots: Tensor | null = null, m: Tensor | null = null;
    try {
      slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, t.shape[0], state, 'prefill');
      m = this.#modalities(opts, t.shape, 'prefill');
      return await this.#run({ input: t.handle, modality: m?.handle ?? null, state: state.handle, slots: slots?.handle ?? null, mode: 'prefill' }, opts, t.shape);
    } finally {
      if (owned) t.dispose();
      slots?.dispose();
      m?.dispose();
    }
  }

  // Distinct slots in [0, state.batch), one per row: else E_SHAPE / E_ARG.
  #slotTensor(sl: readonly number[] | Int32Array, rows: number, state: ModelState, what: string): Tensor {
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
  override async step(tokenIds: readonly number[] | Int32Array, state: ModelState, opts: StepOptions = {}): Promise<Tensor> {
    const ids = Int32Array.from(tokenIds);
    const t = tokenTensor({ data: ids, shape: [ids.length, 1] }, this.vocabSize, this.device, 'step');
    let slots: Tensor | null = null, m: Tensor | null = null;
    try {
      slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, ids.length, state, 'step');
      const mods = opts.modalities === undefined ? undefined : Array.from(opts.modalities as ArrayLike<number | string>, (v) => [v]);
      m = this.#modalities({ modalities: mods }, t.shape, 'step');
      return await this.#run({ input: t.handle, modality: m?.handle ?? null, state: state.handle, slots: slots?.handle ?? null, mode: 'step' }, opts, t.shape);
    } finally {
      t.dispose();
      slots?.dispose();
      m?.dispose();
    }
  }

  /** Frees the weights (and the batch scheduler's state pool: requests in flight end with E_ARG). */
  override dispose(): void {
    super.dispose();
    this.#native.dispose();
    this.#weights.forEach((t) => t.dispose());
  }
}
