// config.json of the Mamba family — dense Mamba (FORMATS.md §1, the Hugging Face MambaForCausalLM
// layout), MoE-Mamba (§2) and Mixture-of-Mamba (§3) — and the tensors such a checkpoint must hold.
import { MambakitError } from '../errors';
import type { Checkpoint } from './safetensors';
import { isRecord } from './safetensors';
import { checkTensors, shapeStr } from './tensor-check';

export type MambaModelType = 'mamba' | 'moe_mamba' | 'mixture_of_mamba';
export const MAMBA_MODEL_TYPES: readonly MambaModelType[] = ['mamba', 'moe_mamba', 'mixture_of_mamba'];
export type BlockType = 'mamba' | 'moe';
export type ExpertActivation = 'relu' | 'gelu' | 'silu' | 'swiglu';
export type ModalityProjection = 'in_proj' | 'x_proj' | 'dt_proj' | 'out_proj';
const PROJECTIONS: readonly ModalityProjection[] = ['in_proj', 'x_proj', 'dt_proj', 'out_proj'];

/** MoE blocks (§2): experts are FFNs x → w_out · act(w_in · x) (SwiGLU: silu(gate) ⊙ up). */
export interface MoeConfig {
  numExperts: number; // Ne
  topK: number; // k, experts per token
  intermediateSize: number; // F
  activation: ExpertActivation;
  /** Divide the k chosen probabilities by their sum (Switch top-1 keeps the raw probability). */
  renormalize: boolean;
}

/** Mixture-of-Mamba (§3): the listed projections hold one weight per modality. */
export interface ModalityConfig {
  count: number; // M
  names: string[];
  specific: ModalityProjection[];
}

export interface MambaConfig {
  modelType: MambaModelType;
  /** One entry per block: "mamba" everywhere except MoE-Mamba's "moe" blocks. */
  layerTypes: BlockType[];
  moe: MoeConfig | null;
  modalities: ModalityConfig | null;
  hiddenSize: number; // D
  numLayers: number; // L
  vocabSize: number; // V as configured (the embedding's first dim wins when it differs)
  stateSize: number; // N
  expand: number;
  intermediateSize: number; // E = expand · D
  convKernel: number; // K
  timeStepRank: number; // R
  useBias: boolean;
  useConvBias: boolean;
  tieWordEmbeddings: boolean;
  layerNormEpsilon: number;
  residualInFp32: boolean;
  padVocabSizeMultiple: number | null;
}

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);

/** Parses and range-checks a Mamba-family config; every error names the file and the key. */
export function parseMambaConfig(json: unknown, file: string): MambaConfig {
  if (!isRecord(json)) throw fail(`${file}: config must be a JSON object`);
  const mt = json.model_type;
  const expected = MAMBA_MODEL_TYPES.map((t) => JSON.stringify(t)).join(', ');
  if (mt === undefined) throw fail(`${file}: config key 'model_type' is missing (expected one of ${expected})`);
  if (!MAMBA_MODEL_TYPES.includes(mt as MambaModelType)) throw fail(`${file}: unknown model_type ${JSON.stringify(mt)} (expected one of ${expected})`);
  const modelType = mt as MambaModelType;

  // Generous bounds: they exist to catch corrupt or mistyped configs, not to limit real models.
  const int = (key: string, max: number, dflt?: number): number => {
    const v = json[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (v === undefined) throw fail(`${file}: config key '${key}' is missing (expected an integer in [1, ${max}])`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
      throw fail(`${file}: config key '${key}' must be an integer in [1, ${max}], found ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = json[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw fail(`${file}: config key '${key}' must be true or false, found ${JSON.stringify(v)}`);
    return v;
  };

  const D = int('hidden_size', 65536);
  const expand = int('expand', 64);
  const E = D * expand;
  const ie = json.intermediate_size; // written by transformers; must agree with expand when present
  if (ie !== undefined && ie !== E) throw fail(`${file}: config key 'intermediate_size' is ${JSON.stringify(ie)}, but expand × hidden_size = ${E}`);
  const tsr = json.time_step_rank ?? 'auto';
  let R: number;
  if (tsr === 'auto') R = Math.ceil(D / 16);
  else if (typeof tsr === 'number' && Number.isInteger(tsr) && tsr >= 1 && tsr <= 65536) R = tsr;
  else throw fail(`${file}: config key 'time_step_rank' must be "auto" or an integer in [1, 65536], found ${JSON.stringify(tsr)}`);
  const eps = json.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1))
    throw fail(`${file}: config key 'layer_norm_epsilon' must be a number in (0, 1), found ${JSON.stringify(eps)}`);
  const pad = json.pad_vocab_size_multiple === undefined || json.pad_vocab_size_multiple === null ? null : int('pad_vocab_size_multiple', 65536);

  const L = int('num_hidden_layers', 1024);
  const oneOf = <T extends string>(key: string, allowed: readonly T[], dflt?: T): T => {
    const v = json[key] ?? dflt;
    if (!allowed.includes(v as T)) throw fail(`${file}: config key '${key}' must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, found ${JSON.stringify(json[key])}`);
    return v as T;
  };
  let layerTypes: BlockType[] = new Array<BlockType>(L).fill('mamba');
  let moe: MoeConfig | null = null;
  let modalities: ModalityConfig | null = null;
  if (modelType === 'moe_mamba') {
    const lt = json.layer_types;
    if (!Array.isArray(lt) || lt.length !== L || lt.some((t) => t !== 'mamba' && t !== 'moe'))
      throw fail(`${file}: config key 'layer_types' must list "mamba" | "moe" for each of the ${L} layers, found ${JSON.stringify(lt)}`);
    layerTypes = lt as BlockType[];
    const numExperts = int('num_experts', 256);
    const topK = int('num_experts_per_tok', 8);
    if (topK > numExperts) throw fail(`${file}: config key 'num_experts_per_tok' (${topK}) exceeds 'num_experts' (${numExperts})`);
    moe = {
      numExperts, topK,
      intermediateSize: int('expert_intermediate_size', 1 << 20),
      activation: oneOf<ExpertActivation>('expert_act', ['relu', 'gelu', 'silu', 'swiglu']),
      renormalize: bool('router_renormalize', false),
    };
  } else if (modelType === 'mixture_of_mamba') {
    const M = int('num_modalities', 4096);
    const names = json.modality_names ?? Array.from({ length: M }, (_, i) => `modality${i}`);
    if (!Array.isArray(names) || names.length !== M || names.some((n) => typeof n !== 'string') || new Set(names).size !== M)
      throw fail(`${file}: config key 'modality_names' must be ${M} distinct strings, found ${JSON.stringify(json.modality_names)}`);
    const spec = json.modality_specific ?? PROJECTIONS;
    if (!Array.isArray(spec) || spec.some((p) => !PROJECTIONS.includes(p as ModalityProjection)) || new Set(spec).size !== spec.length)
      throw fail(`${file}: config key 'modality_specific' must be a subset of ${JSON.stringify(PROJECTIONS)}, found ${JSON.stringify(json.modality_specific)}`);
    modalities = { count: M, names: names as string[], specific: spec as ModalityProjection[] };
  }

  return {
    modelType,
    layerTypes,
    moe,
    modalities,
    hiddenSize: D,
    numLayers: L,
    vocabSize: int('vocab_size', 1 << 24),
    stateSize: int('state_size', 1024),
    expand,
    intermediateSize: E,
    convKernel: int('conv_kernel', 64),
    timeStepRank: R,
    useBias: bool('use_bias', false),
    useConvBias: bool('use_conv_bias', true),
    tieWordEmbeddings: bool('tie_word_embeddings', true),
    layerNormEpsilon: eps,
    residualInFp32: bool('residual_in_fp32', true),
    padVocabSizeMultiple: pad,
  };
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** May be absent; checked when present (lm_head.weight beside tied embeddings, which some exports keep). */
  optional?: boolean;
}

/** Every tensor the checkpoint holds, with its shape. V: the embedding's first dim when given. */
export function expectedMambaTensors(cfg: MambaConfig, vocabFromEmbedding?: number): ExpectedTensor[] {
  const { hiddenSize: D, intermediateSize: E, stateSize: N, convKernel: K, timeStepRank: R } = cfg;
  const V = vocabFromEmbedding ?? cfg.vocabSize;
  // a per-modality projection gains a leading [M] on its weight and bias
  const per = (p: ModalityProjection, shape: number[]): number[] =>
    cfg.modalities?.specific.includes(p) ? [cfg.modalities.count, ...shape] : shape;
  const out: ExpectedTensor[] = [{ name: 'backbone.embeddings.weight', shape: [V, D] }];
  for (let i = 0; i < cfg.numLayers; ++i) {
    const p = `backbone.layers.${i}`;
    out.push({ name: `${p}.norm.weight`, shape: [D] });
    if (cfg.layerTypes[i] === 'moe' && cfg.moe) {
      const { numExperts: Ne, intermediateSize: F, activation } = cfg.moe;
      out.push({ name: `${p}.moe.router.weight`, shape: [Ne, D] });
      out.push({ name: `${p}.moe.experts.w_in`, shape: [Ne, activation === 'swiglu' ? 2 * F : F, D] });
      out.push({ name: `${p}.moe.experts.w_out`, shape: [Ne, D, F] });
      continue;
    }
    const m = `${p}.mixer`;
    out.push({ name: `${m}.in_proj.weight`, shape: per('in_proj', [2 * E, D]) });
    if (cfg.useBias) out.push({ name: `${m}.in_proj.bias`, shape: per('in_proj', [2 * E]) });
    out.push({ name: `${m}.conv1d.weight`, shape: [E, 1, K] });
    if (cfg.useConvBias) out.push({ name: `${m}.conv1d.bias`, shape: [E] });
    out.push({ name: `${m}.x_proj.weight`, shape: per('x_proj', [R + 2 * N, E]) });
    out.push({ name: `${m}.dt_proj.weight`, shape: per('dt_proj', [E, R]) });
    out.push({ name: `${m}.dt_proj.bias`, shape: per('dt_proj', [E]) });
    out.push({ name: `${m}.A_log`, shape: [E, N] });
    out.push({ name: `${m}.D`, shape: [E] });
    out.push({ name: `${m}.out_proj.weight`, shape: per('out_proj', [D, E]) });
    if (cfg.useBias) out.push({ name: `${m}.out_proj.bias`, shape: per('out_proj', [D]) });
  }
  out.push({ name: 'backbone.norm_f.weight', shape: [D] });
  out.push({ name: 'lm_head.weight', shape: [V, D], optional: cfg.tieWordEmbeddings });
  return out;
}

/**
 * Checks that the checkpoint holds exactly the tensors of `cfg` with their shapes (missing, misshapen
 * and unexpected extra tensors are E_FORMAT, naming file, tensor, expected and found). Returns the
 * effective vocabulary size: the embedding's first dim (it may be padded past vocab_size). With a
 * `prefix` (a VLM's 'language_model.') every name carries it and only the names under it are checked.
 */
export function validateMambaCheckpoint(cfg: MambaConfig, ckpt: Checkpoint, prefix = ''): number {
  const embName = `${prefix}backbone.embeddings.weight`;
  if (!ckpt.has(embName)) throw fail(`${ckpt.dir}: tensor '${embName}' is missing (expected [${cfg.vocabSize}, ${cfg.hiddenSize}])`);
  const emb = ckpt.get(embName);
  if (emb.shape.length !== 2 || emb.shape[0] < 1 || emb.shape[1] !== cfg.hiddenSize)
    throw fail(`${emb.file}: tensor '${embName}' has shape ${shapeStr(emb.shape)}, expected [V, ${cfg.hiddenSize}] (vocab_size ${cfg.vocabSize})`);
  const V = emb.shape[0];
  checkTensors(ckpt, expectedMambaTensors(cfg, V), { prefix });
  return V;
}
