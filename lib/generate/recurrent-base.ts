// generate / complete / continuous batching for any recurrent language model, in terms of its
// newState / prefill / step: a model class extends RecurrentLMBase and implements those (and forward).
import type { WeightDType } from '../dtype';
import { EditableModel, EditorHost } from '../editors/host';
import type { EditSites, EditorRegistry } from '../editors/registry';
import { MambakitError } from '../errors';
import type { BatchLoad, LanguageModelCallOptions, PrefillOptions, RecurrentLM, RecurrentState, StepOptions } from '../models/interfaces';
import type { TokenBatch } from '../models/tokens';
import type { Device, Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import type { GenerateChunk, GenerateOptions, GenerateResult } from './request';
import { BatchScheduler, RequestInputs, SchedulerOptions } from './scheduler';

export abstract class RecurrentLMBase<S extends RecurrentState = RecurrentState> extends EditableModel implements RecurrentLM<S> {
  abstract readonly kind: 'language';
  abstract readonly modelType: string;
  abstract readonly vocabSize: number;
  abstract readonly device: Device;
  abstract readonly dtype: WeightDType;
  abstract readonly modalityNames: readonly string[] | null;
  abstract readonly usesModalities: boolean;
  /** The checkpoint's tokenizer.json, when it has one (set by loadModel). */
  tokenizer: Tokenizer | null = null;
  #scheduler: BatchScheduler<S> | null = null;
  #editors: EditorHost | null = null;

  /** The model's edit sites, for checking editor sets against it (width and layers of each site). */
  protected abstract editSites(): EditSites;

  protected override get editorHost(): EditorHost {
    return (this.#editors ??= new EditorHost(() => this.editSites(), this.device));
  }

  /** The editor sets resident on this model (internal: the scheduler and the model's calls read it). */
  get editorRegistry(): EditorRegistry {
    return this.editorHost.registry;
  }

  abstract forward(tokens: TokenBatch | Tensor, opts?: LanguageModelCallOptions): Promise<Tensor>;
  abstract newState(batch: number): S;
  abstract prefill(tokens: TokenBatch | Tensor, state: S, opts?: PrefillOptions): Promise<Tensor>;
  abstract step(tokenIds: readonly number[] | Int32Array, state: S, opts?: StepOptions): Promise<Tensor>;

  /**
   * Streams generated text for a prompt (text needs the tokenizer; token ids always work). Ends on
   * EOS, a stop string (not emitted), maxTokens or the AbortSignal; the return value summarizes.
   * Concurrent calls share batched decode steps (continuous batching, see configureBatching).
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult> {
    return this.generateWith(prompt, opts, {});
  }

  /** generate() with per-request inputs beyond the prompt ids (for model classes built on this one, e.g. a VLM). */
  generateWith(prompt: string | readonly number[], opts: GenerateOptions, inputs: RequestInputs): AsyncGenerator<GenerateChunk, GenerateResult> {
    this.#scheduler ??= new BatchScheduler<S>(this);
    return this.#scheduler.generate(this.tokenizer, prompt, opts, inputs);
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
    this.#scheduler = new BatchScheduler<S>(this, opts);
  }

  /** Running and waiting requests of the batch scheduler. */
  get load(): BatchLoad {
    return this.#scheduler?.load ?? { running: 0, waiting: 0, freeSlots: 0 };
  }

  /** Frees the scheduler's state pool (requests in flight end with E_ARG); subclasses free their weights after. */
  dispose(): void {
    this.#scheduler?.dispose();
    this.#editors?.dispose();
  }
}
