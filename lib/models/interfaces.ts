// What a model is to the rest of mambakit: the scheduler, generate(), the server and the CLI depend on
// these interfaces, not on Mamba. MambaLM is a RecurrentLM (its batching comes from RecurrentLMBase in
// lib/generate/recurrent-base.ts); MambaOutClassifier is an ImageClassifier.
import type { DiffusionOptions } from '../diffusion/options';
import type { WeightDType } from '../dtype';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import type { SchedulerOptions } from '../generate/scheduler';
import type { Device, Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import type { ImageInput, PreprocessOptions } from '../vision/preprocess';
import type { EditorChoice } from '../editors/passes';
import type { EditorRegistry } from '../editors/registry';
import type { ResidualEdit } from './edits';
import type { ModalityBatch, TokenBatch } from './tokens';

/** Per-call options of forward / prefill. */
export interface LanguageModelCallOptions {
  /**
   * Modality id (or name from config.modality_names) per token: [B][T] for forward/prefill, [B] for
   * step. Mixture-of-Mamba only; a model with one modality defaults to it.
   */
  modalities?: ModalityBatch;
  /** Residual-stream edits applied after the given blocks, in the same native pass. */
  edits?: readonly ResidualEdit[];
  /**
   * Attached editor set(s) that edit this call (see loadEditors): one name for every sequence, or one
   * per sequence (null: none). forward / prefill apply their prefill editors to the prompt positions.
   */
  editors?: EditorChoice;
  /** Where each sequence's image tokens are, [start, end) or null (a VLM prompt): editor positions 'image' and MRT's after-image prefix. */
  imageSpans?: readonly (readonly [number, number] | null)[];
}

/** Which state sequence each row of a prefill / step uses: distinct, in [0, state.batch). */
export interface SlotOptions {
  slots?: readonly number[] | Int32Array;
}

/** Options of prefill(): modalities [B][T] and slots. */
export type PrefillOptions = LanguageModelCallOptions & SlotOptions;

/** Options of step(): slots and one modality (id or name) per sequence. */
export interface StepOptions extends SlotOptions {
  modalities?: readonly (number | string)[] | Int32Array;
  /** Residual-stream edits of this step (rows = batch rows b). */
  edits?: readonly ResidualEdit[];
  /** Editor set(s) of this step's sequences: their decode-time editors edit the new token. */
  editors?: EditorChoice;
}

/** Running and waiting requests of a model's batch scheduler, and its free state slots. */
export interface BatchLoad {
  running: number;
  waiting: number;
  freeSlots: number;
}

/** The recurrent state of `batch` sequences (slots 0 … batch − 1). */
export interface RecurrentState {
  readonly batch: number;
  /** Resets one sequence's state to zero (E_ARG for a slot outside [0, batch)). */
  zeroSlot(slot: number): Promise<void>;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** A language model: token ids (or input embeddings) in, logits out; text generation with continuous batching. */
export interface LanguageModel {
  readonly kind: 'language';
  /** config.json's model_type (e.g. 'mamba', 'moe_mamba', 'mixture_of_mamba'). */
  readonly modelType: string;
  readonly vocabSize: number;
  readonly device: Device;
  readonly dtype: WeightDType;
  /** The checkpoint's tokenizer.json, when it has one. */
  tokenizer: Tokenizer | null;
  /** Logits for every position: [B, T, V]. No state is kept. */
  forward(tokens: TokenBatch | Tensor, opts?: LanguageModelCallOptions): Promise<Tensor>;
  /** Streams generated text for a prompt (text needs the tokenizer; token ids always work). */
  generate(prompt: string | readonly number[], opts?: GenerateOptions): AsyncGenerator<GenerateChunk, GenerateResult>;
  /** generate() run to the end: { text, tokens, finishReason, usage }. */
  complete(prompt: string | readonly number[], opts?: GenerateOptions): Promise<GenerateResult>;
  /** Sets the batch size limit (= state slots) and the waiting-queue bound; before or between uses. */
  configureBatching(opts: SchedulerOptions): void;
  /** Running and waiting requests of the batch scheduler. */
  readonly load: BatchLoad;
  /** Frees the weights (requests in flight end with E_ARG). */
  dispose(): void;
}

/**
 * A language model with a fixed-size recurrent state per sequence (Mamba): prompts are prefilled into
 * a state, then one token per sequence is stepped. `S` is the model's own state type.
 */
export interface RecurrentLM<S extends RecurrentState = RecurrentState> extends LanguageModel {
  /** A fresh (zero) state for `batch` sequences. */
  newState(batch: number): S;
  /** Runs the prompts through, advancing `state`; returns the last position's logits [B, V]. */
  prefill(tokens: TokenBatch | Tensor, state: S, opts?: PrefillOptions): Promise<Tensor>;
  /** One token per sequence ([B] ids), advancing `state`; returns logits [B, V]. */
  step(tokenIds: readonly number[] | Int32Array, state: S, opts?: StepOptions): Promise<Tensor>;
  /** The names of the model's modalities (ids are their indices), or null when it has none. */
  readonly modalityNames: readonly string[] | null;
  /** Whether calls need a modality per token (2+ modalities that change the computation). */
  readonly usesModalities: boolean;
  /** The editor sets resident on the model (the scheduler holds a request's set while it runs). */
  readonly editorRegistry: EditorRegistry;
}

export interface Classification {
  label: string;
  index: number;
  probability: number;
}

export interface ClassifyOptions extends PreprocessOptions {
  /** Classes per image, most probable first (default 5). */
  topK?: number;
  /** An attached editor set (loadEditors) that edits the images' streams. */
  editors?: string;
}

/** An image classifier: normalized pixels in, class logits out. */
export interface ImageClassifier {
  readonly kind: 'classifier';
  readonly device: Device;
  readonly dtype: WeightDType;
  /** One label per class index. */
  readonly labels: readonly string[];
  /** pixels f32 [B, H, W, 3] (normalized, channels last) → logits f32 [B, classes]. */
  forward(pixels: Tensor): Promise<Tensor>;
  /** Decodes, preprocesses and classifies a batch of images: the topK classes of each, most probable first. */
  classify(images: ImageInput | readonly ImageInput[], opts?: ClassifyOptions): Promise<Classification[][]>;
  /** Frees the weights. */
  dispose(): void;
}

/** A prompt of a diffusion LM: text (needs the tokenizer) or token ids. */
export type DiffusionPrompt = string | readonly number[] | Int32Array;

/** One denoising step as the text API shows it: the generated region of each sequence (masks not yet committed). */
export interface DiffusionStepView {
  block: number;
  step: number;
  nfe: number;
  /** Per prompt: the genLength ids after the prompt (the mask id where nothing is committed yet). */
  ids: number[][];
  /** Per prompt: absolute positions committed in this step. */
  committed: number[][];
  /** The first `final` generated ids of every prompt are final (their blocks are done). */
  final: number;
}

export interface DiffusionOutput {
  /** The generated text up to the first end-of-sequence id (null without a tokenizer). */
  text: string | null;
  /** All genLength generated ids. */
  ids: number[];
  /** The generated ids before the first end-of-sequence id. */
  tokens: number[];
  /** Forward passes used. */
  nfe: number;
  finishReason: 'length' | 'abort';
  usage: { promptTokens: number; completionTokens: number };
}

/** A masked-diffusion language model (LLaDA, MMaDA): generates by unmasking blocks of mask tokens. */
export interface DiffusionLM {
  readonly kind: 'diffusion';
  readonly modelType: string;
  readonly vocabSize: number;
  readonly maskId: number;
  readonly device: Device;
  readonly dtype: WeightDType;
  tokenizer: Tokenizer | null;
  /** Logits of a full bidirectional pass [B, T, V] (attentionMask: 0 drops a padded key). */
  forward(tokens: TokenBatch, opts?: { attentionMask?: readonly (readonly number[])[] }): Promise<Tensor>;
  generate(prompt: DiffusionPrompt, opts?: DiffusionOptions): Promise<DiffusionOutput>;
  generateBatch(prompts: readonly DiffusionPrompt[], opts?: DiffusionOptions): Promise<DiffusionOutput[]>;
  /** Ids that end the text (eos). */
  readonly stopIds: ReadonlySet<number>;
  /** Every step of the denoising (for a UI), then the outputs. */
  steps(prompts: readonly DiffusionPrompt[], opts?: DiffusionOptions): AsyncGenerator<DiffusionStepView, DiffusionOutput[]>;
  dispose(): void;
}

/** What a vision-language model is asked about: an optional image and a prompt (text with an `<image>` placeholder, or token ids). */
export interface VisionPrompt {
  /** An image file path or its encoded bytes (decoded and preprocessed as the model's config says), or pixels f32 [1, H, W, 3]. */
  image?: ImageInput | Tensor;
  /** Text (the image goes at its `<image>`, or first) or token ids (the image goes at image_token_id, or first). */
  prompt: string | readonly number[];
}

/**
 * A LLaVA-style vision-language model: an image encoder whose feature map, projected into the language
 * model's embedding space, stands in the prompt at the image placeholder; generation is the language model's
 * (continuous batching included).
 */
export interface VisionLanguageModel {
  readonly kind: 'vlm';
  readonly modelType: string;
  readonly device: Device;
  readonly dtype: WeightDType;
  /** The checkpoint's tokenizer.json, when it has one (shared with the language model). */
  tokenizer: Tokenizer | null;
  /** The language model the image tokens are prompted into. */
  readonly lm: RecurrentLM;
  /** The placeholder id a prompt's image tokens replace (and the id of each image position in a prompt's ids). */
  readonly imageTokenId: number;
  /** Tokens one image becomes at the configured image size. */
  readonly imageTokens: number;
  /** A prompt's token ids, with image_token_id at its `<image>` placeholder (E_ARG for more than one). */
  tokenize(prompt: string | readonly number[]): number[];
  /** Logits for every position of the prompt (image tokens included): [1, T, V]. */
  forward(input: VisionPrompt): Promise<Tensor>;
  /** Streams generated text (continuous batching with the language model's other requests). */
  generate(input: VisionPrompt, opts?: GenerateOptions): AsyncGenerator<GenerateChunk, GenerateResult>;
  /** generate() run to the end. */
  complete(input: VisionPrompt, opts?: GenerateOptions): Promise<GenerateResult>;
  configureBatching(opts: SchedulerOptions): void;
  readonly load: BatchLoad;
  dispose(): void;
}
