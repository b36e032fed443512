// LLaDA / MMaDA config.json (the Hugging Face remote-code LLaDAConfig, model_type "llada" or "mmada") and
// the checkpoint layout: every tensor with its shape, and the check that a checkpoint matches its config.
// Names and fields follow the published LLaDA-8B / MMaDA-8B checkpoints (GSAI-ML/LLaDA-8B-*,
// Gen-Verse/MMaDA-8B-*; modeling_llada.py's LLaDAModel with block_type "llama").
import { MambakitError } from '../errors';
import type { Checkpoint } from './safetensors';
import { isRecord } from './safetensors';

export interface LladaConfig {
  modelType: 'llada' | 'mmada';
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  nLayers: number;
  mlpHidden: number;
  /** Rows of the embedding and of the logits: embedding_size (≥ vocab_size), else vocab_size. */
  embeddingSize: number;
  vocabSize: number;
  maxSequenceLength: number;
  ropeTheta: number;
  rmsNormEps: number;
  maskTokenId: number;
  weightTying: boolean;
  scaleLogits: boolean;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** MMaDA: the text vocabulary before the image codes (llm_vocab_size), else vocabSize. */
  llmVocabSize: number;
  /** MMaDA: image codes (codebook_size) and image tokens per image (num_vq_tokens); null for text-only LLaDA. */
  codebookSize: number | null;
  numVqTokens: number | null;
}

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);

/** The LLaDA fields this runtime cannot run otherwise, with the value it needs. */
const REQUIRED: Readonly<Record<string, unknown>> = {
  block_type: 'llama', layer_norm_type: 'rms', activation_type: 'silu', rope: true, alibi: false, include_bias: false,
  attention_layer_norm: false, input_emb_norm: false, block_group_size: 1, multi_query_attention: null,
};
/** include_qkv_bias may be absent/null (inherits include_bias = false) or false. */
const FALSY_OK = new Set(['include_qkv_bias', 'multi_query_attention']);

export function parseLladaConfig(json: unknown, file: string): LladaConfig {
  if (!isRecord(json)) throw fail(`${file}: config must be a JSON object`);
  const type = json.model_type;
  if (type !== 'llada' && type !== 'mmada') throw fail(`${file}: model_type ${JSON.stringify(type)} is not "llada" or "mmada"`);
  const int = (key: string, lo: number, hi: number, dflt?: number): number => {
    const v = json[key] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi)
      throw fail(`${file}: ${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(json[key])}`);
    return v as number;
  };
  const optInt = (key: string): number | null => (json[key] === undefined || json[key] === null ? null : int(key, 0, 2 ** 31 - 1));
  const num = (key: string, lo: number, hi: number, dflt: number): number => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'number' || !(v > lo && v < hi)) throw fail(`${file}: ${key} must be a number in (${lo}, ${hi}), got ${JSON.stringify(json[key])}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'boolean') throw fail(`${file}: ${key} must be true or false, got ${JSON.stringify(json[key])}`);
    return v;
  };
  for (const [key, want] of Object.entries(REQUIRED)) {
    const v = json[key];
    if (v === undefined || (want === null && !v) || v === want || (FALSY_OK.has(key) && !v)) continue;
    throw fail(`${file}: ${key} = ${JSON.stringify(v)} is not supported (mambakit runs LLaDA's ${JSON.stringify(want ?? false)})`);
  }
  if (json.include_qkv_bias) throw fail(`${file}: include_qkv_bias = true is not supported (LLaDA has no biases)`);
  const dModel = int('d_model', 1, 1 << 20), nHeads = int('n_heads', 1, 4096);
  if (dModel % nHeads !== 0) throw fail(`${file}: d_model ${dModel} is not a multiple of n_heads ${nHeads}`);
  const hd = dModel / nHeads;
  if (hd % 2 !== 0 || hd > 256) throw fail(`${file}: head dim d_model / n_heads = ${hd} must be even and at most 256`);
  const nKvHeads = int('n_kv_heads', 1, nHeads, nHeads);
  if (nHeads % nKvHeads !== 0) throw fail(`${file}: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const mlpRatio = num('mlp_ratio', 0, 1024, 4);
  const mlpHidden = json.mlp_hidden_size === undefined || json.mlp_hidden_size === null ? Math.round(mlpRatio * dModel) : int('mlp_hidden_size', 1, 1 << 22);
  const vocabSize = int('vocab_size', 1, 1 << 24);
  const embeddingSize = json.embedding_size === undefined || json.embedding_size === null ? vocabSize : int('embedding_size', 1, 1 << 24);
  if (embeddingSize < vocabSize) throw fail(`${file}: embedding_size ${embeddingSize} is smaller than vocab_size ${vocabSize}`);
  const llm = typeof json.llm_vocab_size === 'number' ? json.llm_vocab_size : vocabSize;
  if (typeof json.codebook_size === 'number' && llm + json.codebook_size > embeddingSize)
    throw fail(`${file}: llm_vocab_size ${llm} + codebook_size ${json.codebook_size} exceed the ${embeddingSize} embedding rows`);
  const maskTokenId = int('mask_token_id', 0, embeddingSize - 1);
  return {
    modelType: type,
    dModel, nHeads, nKvHeads, nLayers: int('n_layers', 1, 4096), mlpHidden, embeddingSize, vocabSize,
    maxSequenceLength: int('max_sequence_length', 1, 1 << 22, 1024),
    ropeTheta: num('rope_theta', 0, 1e12, 10000),
    rmsNormEps: num('rms_norm_eps', 0, 1, 1e-5),
    maskTokenId,
    weightTying: bool('weight_tying', true),
    scaleLogits: bool('scale_logits', false),
    eosTokenId: optInt('eos_token_id'),
    padTokenId: optInt('pad_token_id'),
    llmVocabSize: json.llm_vocab_size === undefined ? vocabSize : int('llm_vocab_size', 1, embeddingSize),
    codebookSize: json.codebook_size === undefined ? null : int('codebook_size', 1, embeddingSize),
    numVqTokens: json.num_vq_tokens === undefined ? null : int('num_vq_tokens', 1, 1 << 20),
  };
}

export interface LladaTensor {
  name: string;
  shape: number[];
  /** A GEMM weight (stored in the load dtype; norms stay f32). */
  gemm: boolean;
}

export function expectedLladaTensors(c: LladaConfig): LladaTensor[] {
  const D = c.dModel, kv = c.nKvHeads * (D / c.nHeads), F = c.mlpHidden, m = 'model.transformer.';
  const out: LladaTensor[] = [{ name: `${m}wte.weight`, shape: [c.embeddingSize, D], gemm: true }];
  for (let i = 0; i < c.nLayers; ++i) {
    const p = `${m}blocks.${i}.`;
    out.push(
      { name: `${p}attn_norm.weight`, shape: [D], gemm: false },
      { name: `${p}q_proj.weight`, shape: [D, D], gemm: true },
      { name: `${p}k_proj.weight`, shape: [kv, D], gemm: true },
      { name: `${p}v_proj.weight`, shape: [kv, D], gemm: true },
      { name: `${p}attn_out.weight`, shape: [D, D], gemm: true },
      { name: `${p}ff_norm.weight`, shape: [D], gemm: false },
      { name: `${p}ff_proj.weight`, shape: [F, D], gemm: true },
      { name: `${p}up_proj.weight`, shape: [F, D], gemm: true },
      { name: `${p}ff_out.weight`, shape: [D, F], gemm: true },
    );
  }
  out.push({ name: `${m}ln_f.weight`, shape: [D], gemm: false });
  if (!c.weightTying) out.push({ name: `${m}ff_out.weight`, shape: [c.embeddingSize, D], gemm: true });
  return out;
}

const dims = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Every expected tensor present with its shape and a float dtype, nothing unexpected (E_FORMAT naming file and tensor). */
export function validateLladaCheckpoint(c: LladaConfig, ckpt: Checkpoint): void {
  // Checkpoints saved through a wrapper sometimes drop the leading "model." (LLaDAModel rather than LLaDAModelLM)
  if (!ckpt.has('model.transformer.wte.weight') && ckpt.has('transformer.wte.weight'))
    throw fail(`${ckpt.dir}: tensor names start with 'transformer.'; the published LLaDA/MMaDA layout is 'model.transformer.*' (LLaDAModelLM)`);
  const problems: string[] = [];
  const expected = expectedLladaTensors(c);
  const known = new Set(expected.map((t) => t.name));
  const what = `d_model ${c.dModel}, ${c.nHeads} heads / ${c.nKvHeads} K/V heads, mlp ${c.mlpHidden}, embedding ${c.embeddingSize}`;
  for (const t of expected) {
    if (!ckpt.has(t.name)) {
      problems.push(`${ckpt.dir}: tensor '${t.name}' is missing (expected ${dims(t.shape)}${t.name.endsWith('transformer.ff_out.weight') ? '; weight_tying is false' : ''})`);
      continue;
    }
    const found = ckpt.get(t.name);
    if (dims(found.shape) !== dims(t.shape)) problems.push(`${found.file}: tensor '${t.name}' has shape ${dims(found.shape)}, expected ${dims(t.shape)} (${what})`);
    else if (found.dtype === 'I32' || found.dtype === 'I64') problems.push(`${found.file}: tensor '${t.name}' is ${found.dtype}, expected a float dtype`);
  }
  for (const t of ckpt.list())
    if (!known.has(t.name))
      problems.push(`${t.file}: unexpected tensor '${t.name}' ${dims(t.shape)}${t.name === 'model.transformer.ff_out.weight' ? ' (weight_tying is true: the head is wte)' : ''}`);
  if (problems.length > 0) throw fail(problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''));
}
