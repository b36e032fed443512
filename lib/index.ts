// The public API of mambakit.
export { Tensor } from './tensor';
export type { Device, FromOptions } from './tensor';
export type { DType, TensorData, WeightDType } from './dtype';
export { MambakitError } from './errors';
export type { ErrorCode } from './errors';
export * as ops from './ops';
export { memory, emptyCache, setThreads, threads, gpus, cudaAvailable, synchronize, info } from './runtime';
export type { MemoryStats, GpuInfo, CudaInfo, RuntimeInfo } from './runtime';
export type { CudaStatus } from './native';
export { loadModel, loadLanguageModel, loadClassifier, loadDiffusionModel, loadVisionLanguageModel } from './models/load';
export type { LoadModelOptions, Model, ModelKind } from './models/load';
export type {
  LanguageModel, RecurrentLM, RecurrentState, ImageClassifier,
  LanguageModelCallOptions, PrefillOptions, StepOptions, SlotOptions, BatchLoad,
} from './models/interfaces';
export { RecurrentLMBase } from './generate/recurrent-base';
export { MambaLM, MambaState } from './models/mamba';
export type { MambaCallOptions } from './models/mamba';
export type { TokenBatch, ModalityBatch } from './models/tokens';
export { loadTokenizer, Tokenizer, StreamDecoder } from './tokenizer';
export type { GenerateOptions, GenerateChunk, GenerateResult, FinishReason } from './generate/request';
export type { SchedulerOptions } from './generate/scheduler';
export { createServer, drain } from './server/server';
export type { MambaConfig, MoeConfig, ModalityConfig, MambaModelType } from './io/mamba-config';
export type { ServeOptions, LogLevel, DrainResult } from './server/server';
export type { TopLogprob } from './generate/top-logprobs';
// MambaOut (vision)
export { MambaOutClassifier } from './models/mambaout';
export type { Classification, ClassifyOptions } from './models/mambaout';
export { GatedCNNBlock, benchGatedBlock } from './vision/block';
export type { GatedBlockWeights, GatedBlockBenchOptions } from './vision/block';
export { preprocessImages } from './vision/preprocess';
export type { ImageInput, PreprocessOptions } from './vision/preprocess';
export * as visionOps from './vision/ops';
// Vision-language models (a MambaOut encoder → projector → a Mamba-family LM)
export { MambaVLM } from './models/vlm';
export type { VlmPrompt, VlmEncodeOptions, VlmForwardOptions, VlmGenerateOptions } from './models/vlm';
export { MambaOutEncoder } from './models/mambaout';
export type { VisionLanguageModel, VisionPrompt } from './models/interfaces';
export type { VlmConfig, ProjectorType } from './io/vlm-config';
// LLaDA / MMaDA (masked diffusion)
export { LladaLM } from './models/llada';
export type { DiffusionLM, DiffusionOutput, DiffusionPrompt, DiffusionStepView } from './models/interfaces';
export type { DiffusionOptions, DiffusionCache, Remasking } from './diffusion/options';
export type { DiffusionStep, DiffusionResult } from './diffusion/sampler';
export type { LladaConfig } from './io/llada-config';
export { loadImageTokenizer } from './models/load';
export { MagvitTokenizer } from './models/magvit';
export type { LoadImageTokenizerOptions, EncodeImagesOptions, ImageCodes } from './models/magvit';
export type { MagvitConfig, MagvitPartConfig } from './io/magvit-config';
export * as magvitOps from './vision/magvit-ops';
// Representation editors (MRT / LoReFT): editor sets resident on a model, chosen per request
export { readEditors, writeEditors, ORTHONORMAL_TOLERANCE } from './editors/format';
export type { Editor, EditorActivation, EditorFormula, EditorPositions, EditorSet, EditorSite, EditorSpec, ReadEditorsOptions } from './editors/format';
export type { EditorChoice } from './editors/passes';
