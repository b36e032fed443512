// Random mamba_vlm checkpoints in the documented layout (docs/mamba-vlm.md): vision_tower.* (timm's MambaOut
// names), mm_projector.* (LLaVA's), language_model.* (the Mamba names), from the MambaOut and Mamba writers'
// weights; and the float64 reference composed from theirs: MambaOut up to the feature stage → the projector
// → the Mamba reference on input embeddings with per-token modalities.
import * as fs from 'fs';
import * as path from 'path';

import { expectedMambaOutTensors } from '../../lib/io/mambaout-config';
import { TensorToWrite, writeSafetensors, writeShardedCheckpoint } from '../../lib/io/safetensors';
import { MambaShape, Weights, mambaConfigJson, randomMambaWeights, tensorShapes } from './mamba-ckpt';
import { MambaOutShape, randomMambaOutWeights } from './mambaout-ckpt';
import { mambaoutFeaturesRef } from './mambaout-ref';
import { mambaRef } from './mamba-ref';
import { uniform } from './random';
import { geluRef, gemmRef } from './ref';
import { byteLevelTokenizerJson } from './tokenizer-fixture';

export interface VlmShape {
  vision: MambaOutShape;
  /** Default: the last stage. */
  featureStage?: number;
  projector: 'linear' | 'mlp2x_gelu';
  text: MambaShape;
  imageTokenId: number;
  imageSize: number;
  /** Mixture-of-Mamba: modality names of image and text tokens. */
  imageModality?: string;
  textModality?: string;
}

export interface VlmWeights {
  vision: Weights; // timm names
  projector: Weights; // '0.weight', '0.bias', ('2.weight', '2.bias')
  text: Weights; // Mamba names
}

export const featureStageOf = (s: VlmShape): number => s.featureStage ?? s.vision.dims.length - 1;

/** Random weights of every part (the vision tower up to its feature stage, unless `unused` keeps the rest and the head). */
export function randomVlmWeights(s: VlmShape, opts: { unused?: boolean } = {}): VlmWeights {
  const fs = featureStageOf(s);
  const all = randomMambaOutWeights(s.vision);
  const vision: Weights = {};
  for (const t of expectedMambaOutTensors(s.vision, fs)) if (opts.unused || !t.unused) vision[t.name] = all[t.name];
  const C = s.vision.dims[fs], D = s.text.D;
  const projector: Weights = { '0.weight': uniform(D * C, -Math.sqrt(3 / C), Math.sqrt(3 / C)), '0.bias': uniform(D, -0.1, 0.1) };
  if (s.projector === 'mlp2x_gelu') Object.assign(projector, { '2.weight': uniform(D * D, -Math.sqrt(3 / D), Math.sqrt(3 / D)), '2.bias': uniform(D, -0.1, 0.1) });
  return { vision, projector, text: randomMambaWeights(s.text) };
}

export function vlmConfigJson(s: VlmShape): Record<string, unknown> {
  const { architectures: _a, ...text } = mambaConfigJson(s.text);
  void _a;
  return {
    model_type: 'mamba_vlm',
    vision_config: { model_type: 'mambaout', depths: s.vision.depths, dims: s.vision.dims, num_classes: s.vision.numClasses, feature_stage: featureStageOf(s) },
    projector_type: s.projector,
    text_config: text,
    image_token_id: s.imageTokenId,
    image_size: s.imageSize,
    ...(s.imageModality !== undefined && { image_modality: s.imageModality }),
    ...(s.textModality !== undefined && { text_modality: s.textModality }),
  };
}

/** Every tensor of the checkpoint by its full name, with its shape. */
export function vlmTensors(s: VlmShape, w: VlmWeights): Record<string, TensorToWrite> {
  const C = s.vision.dims[featureStageOf(s)], D = s.text.D;
  const vShapes = new Map(expectedMambaOutTensors(s.vision).map((t) => [t.name, t.shape]));
  const pShapes: Record<string, number[]> = { '0.weight': [D, C], '0.bias': [D], '2.weight': [D, D], '2.bias': [D] };
  const tShapes = tensorShapes(s.text);
  const out: Record<string, TensorToWrite> = {};
  for (const [n, data] of Object.entries(w.vision)) out[`vision_tower.${n}`] = { dtype: 'F32', shape: vShapes.get(n) as number[], data };
  for (const [n, data] of Object.entries(w.projector)) out[`mm_projector.${n}`] = { dtype: 'F32', shape: pShapes[n], data };
  for (const [n, data] of Object.entries(w.text)) out[`language_model.${n}`] = { dtype: 'F32', shape: tShapes[n], data };
  return out;
}

export interface WriteVlmOptions {
  /** Shards of at most this many bytes (model.safetensors.index.json), else one model.safetensors. */
  shardBytes?: number;
  /** config.json fields to override (undefined deletes one). */
  config?: Record<string, unknown>;
  /** Change the tensors before they are written (drop, add, reshape). */
  tensors?: (t: Record<string, TensorToWrite>) => void;
  /** Write the byte-level BPE fixture tokenizer with '<image>' as an added token of id image_token_id. */
  tokenizer?: boolean | { bos?: boolean };
}

/** Writes config.json, the weights and (optionally) tokenizer.json + tokenizer_config.json into `dir`. */
export async function writeVlmCheckpoint(dir: string, s: VlmShape, w: VlmWeights, opts: WriteVlmOptions = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const cfg: Record<string, unknown> = { ...vlmConfigJson(s), ...opts.config };
  for (const [k, v] of Object.entries(cfg)) if (v === undefined) delete cfg[k];
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const tensors = vlmTensors(s, w);
  opts.tensors?.(tensors);
  if (opts.shardBytes) await writeShardedCheckpoint(dir, tensors, opts.shardBytes);
  else await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  if (opts.tokenizer) {
    const tok = byteLevelTokenizerJson();
    (tok.added_tokens as unknown[]).push({ id: s.imageTokenId, content: '<image>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
    const bos = typeof opts.tokenizer === 'object' && opts.tokenizer.bos;
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|endoftext|>', ...(bos && { bos_token: '<|endoftext|>', add_bos_token: true }) }));
  }
}

/** The projected features [n, D] of one image's pixels [1, H, W, 3] in float64 (after: encoder edits, as mambaoutRef's). */
export function imageTokensRef(s: VlmShape, w: VlmWeights, pixels: ArrayLike<number>, H: number, W: number,
  after?: (block: number, x: Float64Array, rows: number, C: number) => void): Float64Array[] {
  const fs = featureStageOf(s);
  const { x, h, w: wd } = mambaoutFeaturesRef(w.vision, s.vision, pixels, 1, H, W, fs, after);
  const n = h * wd, C = s.vision.dims[fs], D = s.text.D;
  let y = gemmRef(x, w.projector['0.weight'], w.projector['0.bias'], n, D, C);
  if (s.projector === 'mlp2x_gelu') y = gemmRef(y.map(geluRef), w.projector['2.weight'], w.projector['2.bias'], n, D, D);
  return Array.from({ length: n }, (_, i) => y.subarray(i * D, (i + 1) * D));
}

/**
 * Logits [T, V] of a prompt whose text ids `text` get the image tokens inserted at `start`, in float64, with
 * the image tokens in modality `imageMod` and the rest in `textMod` (Mixture-of-Mamba).
 */
export function vlmRef(s: VlmShape, w: VlmWeights, pixels: ArrayLike<number>, H: number, W: number, text: readonly number[], start: number,
  mods: { image: number; text: number } = { image: 0, text: 0 }): Float64Array[] {
  const img = imageTokensRef(s, w, pixels, H, W);
  const tokens = [...text.slice(0, start), ...img, ...text.slice(start)];
  const m = tokens.map((_, t) => (t >= start && t < start + img.length ? mods.image : mods.text));
  return mambaRef(s.text, w.text, tokens, 1e-5, s.text.mom ? m : undefined);
}
