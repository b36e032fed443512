// The built-in configurations of `mambakit bench`: dense Mamba, MoE-Mamba and Mixture-of-Mamba at
// matched active parameters per token, with their parameter and FLOP accounting and token mixes.
import { MambaConfig, expectedMambaTensors, parseMambaConfig } from '../io/mamba-config';

export type SizeName = 'tiny' | 'small' | 'base';

export interface BenchSize {
  D: number; L: number; V: number; N: number; expand: number; K: number;
  /** Prompt length of the prefill measurement and decode steps timed per batch size. */
  prompt: number; decodeSteps: number;
  /** MambaOut's block comparison: width, image tokens (a √T × √T grid), batch. */
  vision?: { C: number; T: number; batch: number };
}

// small (the default) keeps the sparsest configs within a few hundred MB; base is the mamba-130m shape.
export const SIZES: Record<SizeName, BenchSize> = {
  tiny: { D: 64, L: 4, V: 512, N: 16, expand: 2, K: 4, prompt: 64, decodeSteps: 8, vision: { C: 48, T: 64, batch: 2 } },
  // vision: MambaOut-Tiny's stage-3 width on its 14 × 14 grid
  small: { D: 512, L: 8, V: 8192, N: 16, expand: 2, K: 4, prompt: 512, decodeSteps: 32, vision: { C: 384, T: 196, batch: 8 } },
  base: { D: 768, L: 24, V: 50280, N: 16, expand: 2, K: 4, prompt: 512, decodeSteps: 32, vision: { C: 576, T: 196, batch: 32 } },
};

export interface BenchConfig {
  id: string;
  family: 'dense' | 'moe' | 'mom';
  label: string;
  json: Record<string, unknown>;
  cfg: MambaConfig;
}

export const CONFIG_IDS = ['dense', 'moe-8', 'moe-16', 'moe-32', 'moe-16-top2', 'mom-2', 'mom-3'] as const;
export type ConfigId = (typeof CONFIG_IDS)[number];

const MODALITY_NAMES = ['text', 'image', 'speech'];

/** Parameters of one Mamba block of `s` (projections, conv, A_log, D, dt bias, norm). */
export function mambaBlockParams(s: BenchSize): number {
  const E = s.expand * s.D, R = Math.ceil(s.D / 16);
  return 2 * E * s.D + E * s.K + E + (R + 2 * s.N) * E + E * R + E + E * s.N + E + s.D * E + s.D;
}

export function benchConfig(id: ConfigId, s: BenchSize): BenchConfig {
  const json: Record<string, unknown> = {
    model_type: 'mamba', hidden_size: s.D, num_hidden_layers: s.L, vocab_size: s.V, state_size: s.N, expand: s.expand,
    conv_kernel: s.K, time_step_rank: 'auto', use_bias: false, use_conv_bias: true, layer_norm_epsilon: 1e-5, tie_word_embeddings: true,
  };
  let label = `dense Mamba, ${s.L} blocks`;
  let family: BenchConfig['family'] = 'dense';
  const moe = /^moe-(\d+)(-top2)?$/.exec(id);
  if (moe) {
    // MoE-Mamba: every other block is MoE. An expert (two matrices, F·D each) holds as many
    // parameters as a Mamba block, so per token the model runs as many parameters as the dense one
    // (top-2: experts of half the width).
    const experts = Number(moe[1]), k = moe[2] ? 2 : 1;
    const F = Math.round(mambaBlockParams(s) / (2 * s.D) / k);
    Object.assign(json, {
      model_type: 'moe_mamba', layer_types: Array.from({ length: s.L }, (_, i) => (i % 2 === 0 ? 'mamba' : 'moe')),
      num_experts: experts, num_experts_per_tok: k, expert_intermediate_size: F, expert_act: 'gelu', router_renormalize: k > 1,
    });
    family = 'moe';
    label = `MoE-Mamba, ${experts} experts top-${k}`;
  }
  const mom = /^mom-(\d)$/.exec(id);
  if (mom) {
    const M = Number(mom[1]);
    Object.assign(json, {
      model_type: 'mixture_of_mamba', num_modalities: M, modality_names: MODALITY_NAMES.slice(0, M),
      modality_specific: ['in_proj', 'x_proj', 'dt_proj', 'out_proj'],
    });
    family = 'mom';
    label = `Mixture-of-Mamba, ${M} modalities`;
  }
  return { id, family, label, json, cfg: parseMambaConfig(json, `bench config ${id}`) };
}

export interface Accounting {
  totalParams: number;
  activeParams: number;
  /** 2 × active GEMM weights + the conv and scan work of each Mamba block, per token. */
  flopsPerToken: number;
}

/** Total and per-token active parameters (an expert or modality weight set runs for its tokens only). */
export function accounting(c: BenchConfig): Accounting {
  const cfg = c.cfg;
  let total = 0, active = 0, gemm = 0;
  const M = cfg.modalities?.count ?? 1;
  const moe = cfg.moe;
  for (const t of expectedMambaTensors(cfg)) {
    if (t.optional) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    total += n;
    let a = n;
    if (/experts\.w_(in|out)$/.test(t.name) && moe) a = (n / moe.numExperts) * moe.topK;
    else if (cfg.modalities?.specific.some((p) => t.name.includes(`.${p}.`))) a = n / M;
    active += a;
    if (/(proj\.weight|experts\.w_(in|out)|router\.weight)$/.test(t.name)) gemm += a;
  }
  const E = cfg.intermediateSize, N = cfg.stateSize, K = cfg.convKernel, D = cfg.hiddenSize;
  const blocks = cfg.layerTypes.filter((t) => t === 'mamba').length;
  const lmHead = cfg.vocabSize * D; // tied: the embedding read again as the head
  return { totalParams: total, activeParams: active, flopsPerToken: 2 * (gemm + lmHead) + blocks * (7 * E * N + 2 * K * E) };
}

/**
 * A realistic interleaved token mix (Transfusion / Chameleon style documents): text runs with image
 * blocks and, for three modalities, speech segments. Returns one modality id per position.
 */
export function tokenMix(M: number, T: number): number[] {
  const pattern: [number, number][] = M >= 3 ? [[0, 96], [1, 256], [0, 64], [2, 64], [0, 32]] : [[0, 128], [1, 256], [0, 128]];
  const out: number[] = [];
  while (out.length < T) for (const [m, len] of pattern) for (let i = 0; i < len && out.length < T; ++i) out.push(Math.min(m, M - 1));
  return out;
}

/** Modalities of the rows of a decode batch: a mix like the one above (text first). */
export function decodeMix(M: number, B: number): number[] {
  const share = M >= 3 ? [0.5, 0.3, 0.2] : [0.6, 0.4];
  const out: number[] = [];
  share.forEach((f, m) => { for (let i = 0; i < Math.round(f * B); ++i) out.push(m); });
  while (out.length < B) out.push(0);
  return out.slice(0, B);
}
