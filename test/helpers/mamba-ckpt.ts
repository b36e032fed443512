// Random Mamba-family checkpoints — dense (FORMATS.md §1, the Hugging Face layout), MoE-Mamba (§2) and
// Mixture-of-Mamba (§3) — written to disk for tests and benchmarks, with initializations that keep
// activations O(1) through many layers.
import * as fs from 'fs';
import * as path from 'path';

import { Weights, randomWeights } from '../../lib/bench/random-checkpoint';
import { expectedMambaTensors, parseMambaConfig } from '../../lib/io/mamba-config';
import { TensorToWrite, writeSafetensors, writeShardedCheckpoint } from '../../lib/io/safetensors';
import { rand } from './random';

export type { Weights };

export interface MambaShape {
  D: number; L: number; V: number; N: number; expand: number; K: number;
  R?: number | 'auto'; useBias?: boolean; useConvBias?: boolean; tied?: boolean;
  /** MoE-Mamba: block types, experts, top-k, expert width F, activation, renormalization. */
  moe?: { layerTypes: ('mamba' | 'moe')[]; experts: number; topK: number; F: number; act: 'relu' | 'gelu' | 'silu' | 'swiglu'; renorm?: boolean };
  /** Mixture-of-Mamba: modality count and the per-modality projections. */
  mom?: { M: number; specific: ('in_proj' | 'x_proj' | 'dt_proj' | 'out_proj')[]; names?: string[] };
}

/** Random weights keyed by tensor name (f32), from the fresh seeded test RNG. */
export function randomMambaWeights(s: MambaShape): Weights {
  return randomWeights(parseMambaConfig(mambaConfigJson(s), 'test'), rand);
}

export function tensorShapes(s: MambaShape): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const t of expectedMambaTensors(parseMambaConfig(mambaConfigJson(s), 'test'))) shapes[t.name] = t.shape;
  return shapes;
}

export function mambaConfigJson(s: MambaShape): Record<string, unknown> {
  const base: Record<string, unknown> = {
    model_type: 'mamba', architectures: ['MambaForCausalLM'], hidden_size: s.D, num_hidden_layers: s.L, vocab_size: s.V,
    state_size: s.N, expand: s.expand, conv_kernel: s.K, time_step_rank: s.R ?? 'auto', use_bias: !!s.useBias,
    use_conv_bias: s.useConvBias !== false, layer_norm_epsilon: 1e-5, tie_word_embeddings: s.tied !== false, residual_in_fp32: true,
  };
  if (s.moe)
    Object.assign(base, {
      model_type: 'moe_mamba', architectures: undefined, layer_types: s.moe.layerTypes, num_experts: s.moe.experts,
      num_experts_per_tok: s.moe.topK, expert_intermediate_size: s.moe.F, expert_act: s.moe.act,
      router_renormalize: !!s.moe.renorm, router_aux_loss_coef: 0.01,
    });
  if (s.mom)
    Object.assign(base, {
      model_type: 'mixture_of_mamba', architectures: undefined, num_modalities: s.mom.M,
      modality_names: s.mom.names ?? ['text', 'image', 'speech', 'video'].slice(0, s.mom.M).concat(Array.from({ length: Math.max(0, s.mom.M - 4) }, (_, i) => `m${i + 4}`)),
      modality_specific: s.mom.specific,
    });
  return base;
}

/** Writes config.json and the weights (one file, or shards of at most `shardBytes`) into `dir`. */
export async function writeMambaCheckpoint(dir: string, s: MambaShape, w: Weights, opts: { dtype?: 'F32' | 'BF16' | 'F16'; shardBytes?: number } = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(mambaConfigJson(s), null, 2));
  const shapes = tensorShapes(s);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, data] of Object.entries(w)) tensors[name] = { dtype: opts.dtype ?? 'F32', shape: shapes[name], data };
  if (opts.shardBytes) await writeShardedCheckpoint(dir, tensors, opts.shardBytes);
  else await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}
