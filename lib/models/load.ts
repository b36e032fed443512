// loadModel: reads config.json, picks the model family from model_type, validates and loads weights.
// loadLanguageModel / loadClassifier / loadDiffusionModel / loadVisionLanguageModel (or loadModel with
// `kind`) return the one kind they ask for, typed, and refuse a directory holding another kind before
// any weight is read.
import { WeightDType, isWeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { parseMambaConfig, validateMambaCheckpoint } from '../io/mamba-config';
import { ProgressFn, isRecord, openCheckpoint, readConfigJson } from '../io/safetensors';
import { Device } from '../tensor';
import { loadTokenizer } from '../tokenizer';
import { parseLladaConfig, validateLladaCheckpoint } from '../io/llada-config';
import { LladaLM } from './llada';
import { MambaLM } from './mamba';
import { MambaOutClassifier } from './mambaout';
import { parseMambaOutConfig, validateMambaOutCheckpoint } from '../io/mambaout-config';
import { LoadImageTokenizerOptions, MagvitTokenizer } from './magvit';
import { parseVlmConfig, validateVlmCheckpoint } from '../io/vlm-config';
import type { Tokenizer } from '../tokenizer';
import { MambaVLM } from './vlm';

export interface LoadModelOptions {
  device?: Device;
  /** dtype of the GEMM weights and the embedding (norms, conv, A, D, biases stay f32). Default f32. */
  dtype?: WeightDType;
  /** Called after each tensor loads with the bytes read so far and the total. */
  onProgress?: ProgressFn;
  /** The kind of model wanted: a directory holding another kind is E_ARG, before any weight loads. */
  kind?: ModelKind;
  /** Diffusion models (MMaDA): the MAGVIT-v2 image tokenizer's directory, loaded onto the same device (model.imageTokenizer). */
  imageTokenizer?: string;
}

/** What loadModel returns without `kind`: narrow it on `model.kind`. */
export type Model = MambaLM | MambaOutClassifier | LladaLM | MambaVLM;

/** 'language' (MambaLM), 'classifier' (MambaOutClassifier), 'diffusion' (LladaLM) or 'vlm' (MambaVLM). */
export type ModelKind = Model['kind'];

// The model_type values loadModel knows, with the kind and the class each loads into.
const FAMILIES = new Map<string, { kind: ModelKind; cls: string }>([
  ['mamba', { kind: 'language', cls: 'MambaLM' }],
  ['moe_mamba', { kind: 'language', cls: 'MambaLM' }],
  ['mixture_of_mamba', { kind: 'language', cls: 'MambaLM' }],
  ['mambaout', { kind: 'classifier', cls: 'MambaOutClassifier' }],
  ['mamba_vlm', { kind: 'vlm', cls: 'MambaVLM' }],
  ['llada', { kind: 'diffusion', cls: 'LladaLM' }],
  ['mmada', { kind: 'diffusion', cls: 'LladaLM' }],
]);

// What each kind is called, and how to load one (the hint of a refusal names the kind the directory holds).
const KINDS: Record<ModelKind, { what: string; hint: string }> = {
  language: { what: 'a language model', hint: 'use loadLanguageModel or `mambakit generate` for language models' },
  classifier: { what: 'an image classifier', hint: 'use loadClassifier or `mambakit classify` for image classifiers' },
  diffusion: { what: 'a diffusion language model', hint: 'use loadDiffusionModel or `mambakit diffuse` for diffusion language models' },
  vlm: { what: 'a vision-language model', hint: 'use loadVisionLanguageModel or `mambakit generate --image` for vision-language models' },
};

/** Loads the language model in `dir` (E_ARG, before any weight loads, when it holds another kind). */
export function loadModel(dir: string, opts: LoadModelOptions & { kind: 'language' }): Promise<MambaLM>;
/** Loads the image classifier in `dir` (E_ARG, before any weight loads, when it holds another kind). */
export function loadModel(dir: string, opts: LoadModelOptions & { kind: 'classifier' }): Promise<MambaOutClassifier>;
/** Loads the diffusion language model (LLaDA, MMaDA) in `dir` (E_ARG, before any weight loads, when it holds another kind). */
export function loadModel(dir: string, opts: LoadModelOptions & { kind: 'diffusion' }): Promise<LladaLM>;
/** Loads the vision-language model (mamba_vlm) in `dir` (E_ARG, before any weight loads, when it holds another kind). */
export function loadModel(dir: string, opts: LoadModelOptions & { kind: 'vlm' }): Promise<MambaVLM>;
/** Loads whatever model `dir` holds (config.json's model_type): narrow the result on `kind`. */
export function loadModel(dir: string, opts?: LoadModelOptions): Promise<Model>;
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<Model> {
  const device = opts.device ?? 'cpu';
  const dtype = opts.dtype ?? 'f32';
  if (opts.kind !== undefined && !Object.prototype.hasOwnProperty.call(KINDS, opts.kind))
    throw new MambakitError('E_ARG', `loadModel: kind must be 'language', 'classifier', 'diffusion' or 'vlm', got ${JSON.stringify(opts.kind)}`);
  if (!isWeightDType(dtype)) throw new MambakitError('E_DTYPE', `loadModel: dtype must be f32, f16 or bf16, got '${dtype}'`);
  const { cfgFile, json, type, family } = await readModelConfig(dir);
  if (family && opts.kind !== undefined && family.kind !== opts.kind)
    throw new MambakitError('E_ARG', `${dir}: model_type "${String(type)}" is a ${family.cls}, not ${KINDS[opts.kind].what} (${KINDS[family.kind].hint})`);
  switch (type) {
    case 'mamba':
    case 'moe_mamba':
    case 'mixture_of_mamba': {
      const cfg = parseMambaConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      const V = validateMambaCheckpoint(cfg, ckpt);
      const tokenizer = await tokenizerFor(dir, V);
      const model = await MambaLM.load(cfg, ckpt, V, device, dtype);
      model.tokenizer = tokenizer;
      return model;
    }
    case 'mambaout': {
      const cfg = parseMambaOutConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      validateMambaOutCheckpoint(cfg, ckpt);
      return MambaOutClassifier.load(cfg, ckpt, device, dtype);
    }
    case 'llada':
    case 'mmada': {
      const cfg = parseLladaConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      validateLladaCheckpoint(cfg, ckpt);
      const tokenizer = await tokenizerFor(dir, cfg.embeddingSize);
      const model = await LladaLM.load(cfg, ckpt, device, dtype);
      model.tokenizer = tokenizer;
      try {
        if (opts.imageTokenizer !== undefined) model.imageTokenizer = await MagvitTokenizer.load(opts.imageTokenizer, { device });
      } catch (e) {
        model.dispose();
        throw e;
      }
      return model;
    }
    case 'mamba_vlm': {
      const cfg = parseVlmConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      const V = validateVlmCheckpoint(cfg, ckpt);
      const tokenizer = await tokenizerFor(dir, V);
      if (tokenizer) {
        try {
          tokenizer.checkIds([cfg.imageTokenId], 'image_token_id');
        } catch {
          throw new MambakitError('E_FORMAT', `${dir}: config key 'image_token_id' (${cfg.imageTokenId}) is not a token of tokenizer.json: ` +
            `give the image placeholder a token (an added token such as '<image>' with that id, as llava-hf's tokenizers have)`);
        }
      }
      const model = await MambaVLM.load(cfg, ckpt, V, device, dtype);
      model.tokenizer = tokenizer;
      return model;
    }
    default:
      throw new MambakitError('E_FORMAT', `${cfgFile}: unknown model_type ${JSON.stringify(type)} (supported: ${[...FAMILIES.keys()].map((k) => JSON.stringify(k)).join(', ')})`);
  }
}

/** Loads the language model in `dir`; a directory holding an image classifier is E_ARG (before any weight loads). */
export function loadLanguageModel(dir: string, opts: Omit<LoadModelOptions, 'kind'> = {}): Promise<MambaLM> {
  return loadModel(dir, { ...opts, kind: 'language' });
}

/** Loads the diffusion language model in `dir` (LLaDA, MMaDA); another kind is E_ARG (before any weight loads). */
export function loadDiffusionModel(dir: string, opts: Omit<LoadModelOptions, 'kind'> = {}): Promise<LladaLM> {
  return loadModel(dir, { ...opts, kind: 'diffusion' });
}

/** Loads the vision-language model in `dir` (mamba_vlm); another kind is E_ARG (before any weight loads). */
export function loadVisionLanguageModel(dir: string, opts: Omit<LoadModelOptions, 'kind'> = {}): Promise<MambaVLM> {
  return loadModel(dir, { ...opts, kind: 'vlm' });
}

/** The kind of model `dir` holds (its config.json's model_type), or null for a model_type loadModel does not know. */
export async function modelKindOf(dir: string): Promise<ModelKind | null> {
  return (await readModelConfig(dir)).family?.kind ?? null;
}

async function readModelConfig(dir: string): Promise<{ cfgFile: string; json: unknown; type: unknown; family: { kind: ModelKind; cls: string } | undefined }> {
  const { cfgFile, json } = await readConfigJson(dir);
  const type = isRecord(json) ? json.model_type : undefined;
  return { cfgFile, json, type, family: typeof type === 'string' ? FAMILIES.get(type) : undefined };
}

// The checkpoint's tokenizer.json (null without one); more tokens than the model's `rows` embedding rows is E_FORMAT.
async function tokenizerFor(dir: string, rows: number): Promise<Tokenizer | null> {
  const tokenizer = await loadTokenizer(dir);
  if (tokenizer && tokenizer.vocabSize > rows)
    throw new MambakitError('E_FORMAT', `${dir}: tokenizer.json has ${tokenizer.vocabSize} tokens, the model's embedding only ${rows}`);
  return tokenizer;
}

/** Loads the image classifier in `dir`; a directory holding a language model is E_ARG (before any weight loads). */
export function loadClassifier(dir: string, opts: Omit<LoadModelOptions, 'kind'> = {}): Promise<MambaOutClassifier> {
  return loadModel(dir, { ...opts, kind: 'classifier' });
}

/**
 * Loads the MAGVIT-v2 image tokenizer in `dir` (showlab/magvitv2 as MMaDA uses it: config.json with
 * "_class_name": "MAGVITv2", model.safetensors or pytorch_model.safetensors).
 */
export function loadImageTokenizer(dir: string, opts: LoadImageTokenizerOptions = {}): Promise<MagvitTokenizer> {
  return MagvitTokenizer.load(dir, opts);
}
