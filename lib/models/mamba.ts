// Dense Mamba-1 language model (FORMATS.md §1): weights loaded from a Hugging Face checkpoint, run as
// one native plan per call (embedding → L × [rmsnorm → in_proj → conv → x_proj → dt_proj → scan →
// out_proj] → norm_f → lm_head), with no crossing back to JS between ops.
import { MambakitError } from '../errors';
import { MambaConfig } from '../io/mamba-config';
import { Checkpoint } from '../io/safetensors';
import { MambaLayerHandles, NativeModel, addon, call } from '../native';
import { Device, Tensor } from '../tensor';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import { BatchScheduler, SchedulerOptions } from '../generate/scheduler';
import type { Tokenizer } from '../tokenizer';
import { TokenBatch, tokenTensor } from './tokens';

export type WeightDType = 'f32' | 'f16' | 'bf16';

/** Recurrent state of `batch` sequences: conv windows [L, B, K-1, E] and SSM states [L, B, N, E]. */
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
  ) {
    this.#native = native;
    this.#weights = weights;
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
        // A = −exp(A_log), stored transposed [N, E] so the scan reads channels contiguously
        const aLog = await ckpt.load(`${p}mixer.A_log`, { dtype: 'f32' });
        const a = (await aLog.data()) as Float32Array;
        aLog.dispose();
        const At = new Float32Array(N * E);
        for (let e = 0; e < E; ++e) for (let n = 0; n < N; ++n) At[n * E + e] = -Math.exp(a[e * N + n]);
        const A = Tensor.from(At, [N, E], { device });
        owned.push(A);
        layers.push({
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
      const normF = await load('backbone.norm_f.weight', 'f32');
      const native = call(() => addon.mambaCreate(
        { D, L: cfg.numLayers, V, N, E, K: cfg.convKernel, R: cfg.timeStepRank, eps: cfg.layerNormEpsilon },
        { embedding: embedding.handle, lm_head: lmHead.handle, norm_f: normF.handle, layers },
        device,
      ));
      return new MambaLM(cfg, V, device, dtype, native, owned);
    } catch (e) {
      owned.forEach((t) => t.dispose());
      throw e;
    }
  }

  /** Logits for every position: [B, T, V]. No state is kept. */
  async forward(tokens: TokenBatch): Promise<Tensor> {
    const t = tokenTensor(tokens, this.vocabSize, this.device, 'forward');
    try {
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, null, null, null, false, false)));
    } finally {
      t.dispose();
    }
  }

  /** A fresh (zero) state for `batch` sequences. */
  newState(batch: number): MambaState {
    if (!Number.isInteger(batch) || batch < 1) throw new MambakitError('E_ARG', `newState: batch must be a positive integer, got ${batch}`);
    const { numLayers: L, convKernel: K, intermediateSize: E, stateSize: N } = this.config;
    const conv = Tensor.from(new Float32Array(L * batch * (K - 1) * E), [L, batch, K - 1, E], { device: this.device });
    const ssm = Tensor.from(new Float32Array(L * batch * N * E), [L, batch, N, E], { device: this.device });
    return new MambaState(conv, ssm, batch);
  }

  /**
   * Runs the prompts through, advancing `state`; returns the last position's logits [B, V]. With
   * `slots`, row b uses the state of sequence slots[b] (see step()).
   */
  async prefill(tokens: TokenBatch, state: MambaState, opts: { slots?: readonly number[] | Int32Array } = {}): Promise<Tensor> {
    const t = tokenTensor(tokens, this.vocabSize, this.device, 'prefill');
    const slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, t.shape[0], state, 'prefill');
    try {
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, state.conv.handle, state.ssm.handle, slots?.handle ?? null, true, false)));
    } finally {
      t.dispose();
      slots?.dispose();
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
  async step(tokenIds: readonly number[] | Int32Array, state: MambaState, opts: { slots?: readonly number[] | Int32Array } = {}): Promise<Tensor> {
    const ids = Int32Array.from(tokenIds);
    const slots = opts.slots === undefined ? null : this.#slotTensor(opts.slots, ids.length, state, 'step');
    const t = tokenTensor({ data: ids, shape: [ids.length, 1] }, this.vocabSize, this.device, 'step');
    try {
      const s = slots;
      return Tensor.fromHandle(await call(() => this.#native.forward(t.handle, state.conv.handle, state.ssm.handle, s ? s.handle : null, true, true)));
    } finally {
      t.dispose();
      slots?.dispose();
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
