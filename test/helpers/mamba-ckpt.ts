// Random Mamba-family checkpoints — dense (FORMATS.md §1, the Hugging Face layout), MoE-Mamba (§2) and
// Mixture-of-Mamba (§3) — written to disk for tests and benchmarks, with initializations that keep
// activations O(1) through many layers.
import * as fs from 'fs';
import * as path from 'path';

import { TensorToWrite, writeSafetensors, writeShardedCheckpoint } from '../../lib/io/safetensors';
import { rand, uniform } from './random';

export interface MambaShape {
  D: number; L: number; V: number; N: number; expand: number; K: number;
  R?: number | 'auto'; useBias?: boolean; useConvBias?: boolean; tied?: boolean;
  /** MoE-Mamba: block types, experts, top-k, expert width F, activation, renormalization. */
  moe?: { layerTypes: ('mamba' | 'moe')[]; experts: number; topK: number; F: number; act: 'relu' | 'gelu' | 'silu' | 'swiglu'; renorm?: boolean };
  /** Mixture-of-Mamba: modality count and the per-modality projections. */
  mom?: { M: number; specific: ('in_proj' | 'x_proj' | 'dt_proj' | 'out_proj')[]; names?: string[] };
}

const isMoe = (s: MambaShape, i: number): boolean => s.moe?.layerTypes[i] === 'moe';
/** Leading [M] of a projection that is per modality in `s`, else nothing. */
const lead = (s: MambaShape, proj: string): number[] => (s.mom && s.mom.specific.includes(proj as 'in_proj') ? [s.mom.M] : []);
const count = (s: MambaShape, proj: string): number => (lead(s, proj)[0] ?? 1);

export type Weights = Record<string, Float32Array>;

function init(n: number, fanIn: number): Float32Array {
  return uniform(n, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
}

/** Random weights keyed by HF tensor name (f32). */
export function randomMambaWeights(s: MambaShape): Weights {
  const E = s.expand * s.D;
  const R = s.R === undefined || s.R === 'auto' ? Math.ceil(s.D / 16) : s.R;
  const w: Weights = { 'backbone.embeddings.weight': uniform(s.V * s.D, -1, 1), 'backbone.norm_f.weight': uniform(s.D, 0.8, 1.2) };
  for (let i = 0; i < s.L; ++i) {
    const p = `backbone.layers.${i}.`;
    w[`${p}norm.weight`] = uniform(s.D, 0.8, 1.2);
    if (isMoe(s, i) && s.moe) {
      const { experts: Ne, F, act } = s.moe;
      w[`${p}moe.router.weight`] = uniform(Ne * s.D, -1, 1); // O(1) router logits: distinct, well-separated choices
      w[`${p}moe.experts.w_in`] = init(Ne * (act === 'swiglu' ? 2 : 1) * F * s.D, s.D);
      w[`${p}moe.experts.w_out`] = init(Ne * s.D * F, F);
      continue;
    }
    const c = (proj: string) => count(s, proj);
    w[`${p}mixer.in_proj.weight`] = init(c('in_proj') * 2 * E * s.D, s.D);
    if (s.useBias) w[`${p}mixer.in_proj.bias`] = uniform(c('in_proj') * 2 * E, -0.1, 0.1);
    w[`${p}mixer.conv1d.weight`] = init(E * s.K, s.K);
    if (s.useConvBias !== false) w[`${p}mixer.conv1d.bias`] = uniform(E, -0.1, 0.1);
    w[`${p}mixer.x_proj.weight`] = init(c('x_proj') * (R + 2 * s.N) * E, E);
    w[`${p}mixer.dt_proj.weight`] = init(c('dt_proj') * E * R, R);
    // softplus(dt_bias) in [1e-3, 1e-1], as Mamba initializes the step size
    w[`${p}mixer.dt_proj.bias`] = Float32Array.from({ length: c('dt_proj') * E }, () => Math.log(Math.expm1(Math.exp(Math.log(1e-3) + rand() * Math.log(100)))));
    w[`${p}mixer.A_log`] = Float32Array.from({ length: E * s.N }, (_, i2) => Math.log(1 + (i2 % s.N)) + 0.1 * rand());
    w[`${p}mixer.D`] = uniform(E, 0.5, 1.5);
    w[`${p}mixer.out_proj.weight`] = init(c('out_proj') * s.D * E, E);
    if (s.useBias) w[`${p}mixer.out_proj.bias`] = uniform(c('out_proj') * s.D, -0.1, 0.1);
  }
  if (s.tied === false) w['lm_head.weight'] = init(s.V * s.D, s.D);
  return w;
}

export function tensorShapes(s: MambaShape): Record<string, number[]> {
  const E = s.expand * s.D;
  const R = s.R === undefined || s.R === 'auto' ? Math.ceil(s.D / 16) : s.R;
  const shapes: Record<string, number[]> = { 'backbone.embeddings.weight': [s.V, s.D], 'backbone.norm_f.weight': [s.D], 'lm_head.weight': [s.V, s.D] };
  for (let i = 0; i < s.L; ++i) {
    const p = `backbone.layers.${i}.`;
    if (isMoe(s, i) && s.moe) {
      const { experts: Ne, F, act } = s.moe;
      Object.assign(shapes, {
        [`${p}norm.weight`]: [s.D], [`${p}moe.router.weight`]: [Ne, s.D],
        [`${p}moe.experts.w_in`]: [Ne, act === 'swiglu' ? 2 * F : F, s.D], [`${p}moe.experts.w_out`]: [Ne, s.D, F],
      });
      continue;
    }
    const l = (proj: string) => lead(s, proj);
    Object.assign(shapes, {
      [`${p}norm.weight`]: [s.D], [`${p}mixer.in_proj.weight`]: [...l('in_proj'), 2 * E, s.D], [`${p}mixer.in_proj.bias`]: [...l('in_proj'), 2 * E],
      [`${p}mixer.conv1d.weight`]: [E, 1, s.K], [`${p}mixer.conv1d.bias`]: [E], [`${p}mixer.x_proj.weight`]: [...l('x_proj'), R + 2 * s.N, E],
      [`${p}mixer.dt_proj.weight`]: [...l('dt_proj'), E, R], [`${p}mixer.dt_proj.bias`]: [...l('dt_proj'), E], [`${p}mixer.A_log`]: [E, s.N], [`${p}mixer.D`]: [E],
      [`${p}mixer.out_proj.weight`]: [...l('out_proj'), s.D, E], [`${p}mixer.out_proj.bias`]: [...l('out_proj'), s.D],
    });
  }
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
