// Random LLaDA checkpoints in the published Hugging Face layout (GSAI-ML/LLaDA-8B-*): config.json with
// LLaDA's field names (ModelConfig / LLaDAConfig in NVlabs/Fast-dLLM llada/model/configuration_llada.py,
// values as the 8B release sets them), sharded safetensors + model.safetensors.index.json, and a
// tokenizer.json when the byte-level fixture can cover the vocabulary. Returns the values exactly as
// stored (bf16-rounded for bf16) so the float64 reference (llada-ref.ts) runs on the same numbers.
import * as fs from 'fs';
import * as path from 'path';

import { f32ToBf16Bits } from '../../lib/dtype';
import { TensorToWrite, writeShardedCheckpoint } from '../../lib/io/safetensors-write';
import { LladaRefConfig, PREFIX, RefWeights, lladaTensorShapes } from './llada-ref';
import { rand } from './random';
import { EOS, byteLevelTokenizerJson } from './tokenizer-fixture';

export interface LladaShape {
  D: number;
  H: number;
  KVH: number;
  L: number;
  F: number;
  /** embedding_size: the rows of wte and of the head. */
  V: number;
  /** vocab_size (≤ V; default V). */
  vocabSize?: number;
  /** rope_theta (default 500000, as LLaDA-8B). */
  theta?: number;
  /** rms_norm_eps (default 1e-5). */
  eps?: number;
  /** weight_tying (default false, as LLaDA-8B). */
  tied?: boolean;
  scaleLogits?: boolean;
  maskId: number;
  /** eos_token_id = pad_token_id (LLaDA-8B uses one id for both); default: the fixture's EOS when a tokenizer is written, else the last id that is not the mask. */
  eosId?: number;
  dtype: 'f32' | 'bf16';
  /** Shard size limit in bytes (default: about a third of the checkpoint, so there are several shards). */
  shardBytes?: number;
  /** Write tokenizer.json / tokenizer_config.json when possible (default true). */
  tokenizer?: boolean;
  /**
   * Zero the mask token's output row (default true): a trained LLaDA never predicts [MASK]; a random
   * head would do so for ~1/V of the positions, and the samplers would then commit the mask id.
   * With tied weights this zeroes the mask's embedding too.
   */
  zeroMaskRow?: boolean;
}

export interface LladaCheckpoint {
  dir: string;
  /** The reference's view of the config. */
  config: LladaRefConfig;
  /** config.json as written. */
  configJson: Record<string, unknown>;
  /** Every tensor, as stored (bf16-rounded when dtype is bf16), keyed by its checkpoint name. */
  weights: RefWeights;
  shapes: Record<string, number[]>;
  /** The shard files written (names inside dir). */
  shards: string[];
  /** Whether tokenizer.json was written (see lladaTokenizerJson). */
  tokenizer: boolean;
  maskId: number;
  eosId: number;
  padId: number;
}

/** The byte-level fixture's size: 256 bytes, its merges and the EOS. */
export const FIXTURE_VOCAB = Object.keys((byteLevelTokenizerJson().model as { vocab: Record<string, number> }).vocab).length;

export function refConfigOf(s: LladaShape): LladaRefConfig {
  return { D: s.D, H: s.H, KVH: s.KVH, L: s.L, F: s.F, V: s.V, theta: s.theta ?? 500000, eps: s.eps ?? 1e-5, tied: !!s.tied, scaleLogits: !!s.scaleLogits };
}

/** Whether a tokenizer.json can be written for this shape (see lladaTokenizerJson). */
export function canWriteTokenizer(s: LladaShape): boolean {
  const vocab = s.vocabSize ?? s.V;
  return s.tokenizer !== false && vocab >= FIXTURE_VOCAB && s.maskId >= FIXTURE_VOCAB && s.maskId < vocab;
}

function eosOf(s: LladaShape): number {
  if (s.eosId !== undefined) return s.eosId;
  if (canWriteTokenizer(s)) return FIXTURE_VOCAB - 1; // the fixture's <|endoftext|>
  const vocab = s.vocabSize ?? s.V;
  return s.maskId === vocab - 1 ? vocab - 2 : vocab - 1;
}

/** config.json with LLaDA-8B's field names and kinds (values of the 8B release where they are not shape). */
export function lladaConfigJson(s: LladaShape): Record<string, unknown> {
  const c = refConfigOf(s);
  const eos = eosOf(s);
  return {
    activation_type: 'silu',
    alibi: false,
    alibi_bias_max: 8.0,
    architectures: ['LLaDAModelLM'],
    attention_dropout: 0.0,
    attention_layer_norm: false,
    attention_layer_norm_with_affine: true,
    auto_map: {
      AutoConfig: 'configuration_llada.LLaDAConfig',
      AutoModel: 'modeling_llada.LLaDAModelLM',
      AutoModelForCausalLM: 'modeling_llada.LLaDAModelLM',
    },
    bias_for_layer_norm: false,
    block_group_size: 1,
    block_type: 'llama',
    d_model: c.D,
    embedding_dropout: 0.0,
    embedding_size: c.V,
    eos_token_id: eos,
    flash_attention: false,
    include_bias: false,
    include_qkv_bias: false,
    init_cutoff_factor: null,
    init_device: 'meta',
    init_fn: 'mitchell',
    init_std: 0.02,
    input_emb_norm: false,
    layer_norm_type: 'rms',
    layer_norm_with_affine: true,
    mask_token_id: s.maskId,
    max_sequence_length: 4096,
    mlp_hidden_size: c.F,
    // LLaDA-8B ships mlp_ratio 4 beside mlp_hidden_size 12288 (= 3·d_model): mlp_hidden_size wins.
    mlp_ratio: 4,
    model_type: 'llada',
    multi_query_attention: null,
    n_heads: c.H,
    n_kv_heads: c.KVH,
    n_layers: c.L,
    pad_token_id: eos,
    precision: 'amp_bf16',
    residual_dropout: 0.0,
    rms_norm_eps: c.eps,
    rope: true,
    rope_full_precision: true,
    rope_theta: c.theta,
    scale_logits: c.scaleLogits,
    torch_dtype: s.dtype === 'bf16' ? 'bfloat16' : 'float32',
    transformers_version: '4.46.3',
    use_cache: false,
    vocab_size: s.vocabSize ?? c.V,
    weight_tying: c.tied,
  };
}

/**
 * Random f32 weights with O(1) activations: projections U(−1,1)·√(3/fan_in) (unit-variance outputs),
 * norms 1 ± 0.1, wte U(−1,1); the untied head U(−1,1)·3√(3/D) (logit std ≈ 3; tied: ≈ √(D/3)).
 */
export function randomLladaWeights(s: LladaShape, rng: () => number = rand): RefWeights {
  const c = refConfigOf(s);
  const shapes = lladaTensorShapes(c);
  const w: RefWeights = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = new Float32Array(n);
    let lo = -1, hi = 1, base = 0;
    if (shape.length === 1) [base, lo, hi] = [1, -0.1, 0.1];
    else if (name === `${PREFIX}wte.weight`) [lo, hi] = [-1, 1];
    else if (name === `${PREFIX}ff_out.weight`) {
      const a = 3 * Math.sqrt(3 / c.D);
      [lo, hi] = [-a, a];
    } else {
      const a = Math.sqrt(3 / shape[1]);
      [lo, hi] = [-a, a];
    }
    for (let i = 0; i < n; ++i) t[i] = base + lo + (hi - lo) * rng();
    w[name] = t;
  }
  if (s.zeroMaskRow !== false && s.maskId >= 0 && s.maskId < c.V) {
    const head = w[c.tied ? `${PREFIX}wte.weight` : `${PREFIX}ff_out.weight`];
    head.fill(0, s.maskId * c.D, (s.maskId + 1) * c.D);
  }
  return w;
}

const bf16Scratch = new Uint32Array(1);
const bf16View = new Float32Array(bf16Scratch.buffer);
/** The float value of bf16 bits. */
export function bf16BitsToF32(bits: number): number {
  bf16Scratch[0] = (bits & 0xffff) << 16;
  return bf16View[0];
}

/**
 * tokenizer.json for a LLaDA checkpoint: the byte-level BPE fixture (ids 0..FIXTURE_VOCAB−1, the last
 * being <|endoftext|>) plus special added tokens up to vocab_size: <|mdm_mask|> at maskId (LLaDA's
 * mask token's name) and <|reserved_i|> elsewhere. Null when the fixture cannot cover the vocabulary
 * (vocab_size < FIXTURE_VOCAB) or the mask id falls on a fixture token.
 */
export function lladaTokenizerJson(s: LladaShape): Record<string, unknown> | null {
  if (!canWriteTokenizer(s)) return null;
  const vocab = s.vocabSize ?? s.V;
  const tok = byteLevelTokenizerJson();
  const model = tok.model as { vocab: Record<string, number> };
  const added = tok.added_tokens as Record<string, unknown>[];
  for (let id = FIXTURE_VOCAB; id < vocab; ++id) {
    const content = id === s.maskId ? '<|mdm_mask|>' : `<|reserved_${id}|>`;
    model.vocab[content] = id;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  return tok;
}

/** Writes config.json, the sharded weights + index and (when possible) the tokenizer into `dir`. */
export async function writeLladaCheckpoint(dir: string, s: LladaShape, weights?: RefWeights): Promise<LladaCheckpoint> {
  const config = refConfigOf(s);
  const configJson = lladaConfigJson(s);
  const shapes = lladaTensorShapes(config);
  const w = weights ?? randomLladaWeights(s);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson, null, 2));

  const stored: RefWeights = {};
  const tensors: Record<string, TensorToWrite> = {};
  let total = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const src = w[name];
    if (!src) throw new Error(`writeLladaCheckpoint: no values for ${name}`);
    if (s.dtype === 'bf16') {
      const bits = Uint16Array.from(src, f32ToBf16Bits);
      tensors[name] = { dtype: 'BF16', shape, data: bits };
      stored[name] = Float32Array.from(bits, bf16BitsToF32);
      total += bits.byteLength;
    } else {
      tensors[name] = { dtype: 'F32', shape, data: src };
      stored[name] = Float32Array.from(src);
      total += src.byteLength;
    }
  }
  const shards = await writeShardedCheckpoint(dir, tensors, s.shardBytes ?? Math.max(1, Math.ceil(total / 3)));

  const tok = lladaTokenizerJson(s);
  if (tok) {
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
    fs.writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ eos_token: EOS, pad_token: EOS, mask_token: '<|mdm_mask|>', add_bos_token: false, add_eos_token: false, model_max_length: 4096 }, null, 2),
    );
  }
  const eos = eosOf(s);
  return { dir, config, configJson, weights: stored, shapes, shards, tokenizer: tok !== null, maskId: s.maskId, eosId: eos, padId: eos };
}
