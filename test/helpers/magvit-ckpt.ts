// Random MAGVIT-v2 checkpoints in the published layout (showlab/magvitv2's state-dict names, convs
// OIHW; config.json with "_class_name": "MAGVITv2"), with small channel counts so tests are fast.
import * as fs from 'fs';
import * as path from 'path';

import { MagvitConfig, expectedMagvitTensors, parseMagvitConfig } from '../../lib/io/magvit-config';
import { TensorToWrite, writeSafetensors } from '../../lib/io/safetensors';
import { uniform } from './random';

export type Weights = Record<string, Float32Array>;

/** A small tokenizer: 3 levels (downsampling 4), GroupNorm over 4 groups, 5-bit codes, attention at one level of each side. */
export const SMALL_MAGVIT: Record<string, unknown> = {
  _class_name: 'MAGVITv2',
  num_groups: 4,
  encoder: { ch: 8, ch_mult: [1, 2, 2], num_res_blocks: [1, 2, 1], attn_resolutions: [8], resolution: 16, z_channels: 5 },
  decoder: { ch: 8, ch_mult: [1, 1, 2], num_res_blocks: [1, 1, 2], attn_resolutions: [8], resolution: 16, z_channels: 5 },
};

export const smallConfig = (json: Record<string, unknown> = SMALL_MAGVIT): MagvitConfig => parseMagvitConfig(json, 'config.json');

/** Random weights keyed by checkpoint name, in torch's shapes. */
export function randomMagvitWeights(cfg: MagvitConfig): Weights {
  const w: Weights = {};
  for (const t of expectedMagvitTensors(cfg)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const fanIn = t.shape.length > 1 ? n / t.shape[0] : 1;
    if (t.shape.length === 1 && /norm[12]?\.weight$|\.norm\.weight$|norm_out\.weight$/.test(t.name)) w[t.name] = uniform(n, 0.8, 1.2);
    else if (t.name.endsWith('.bias')) w[t.name] = uniform(n, -0.1, 0.1);
    else w[t.name] = uniform(n, -Math.sqrt(3 / fanIn), Math.sqrt(3 / fanIn));
  }
  return w;
}

/** Writes model.safetensors (or `file`) + config.json. */
export async function writeMagvitCheckpoint(dir: string, cfg: MagvitConfig, w: Weights,
  opts: { config?: Record<string, unknown>; file?: string; extra?: Record<string, TensorToWrite> } = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const shapes = new Map(expectedMagvitTensors(cfg).map((t) => [t.name, t.shape]));
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, data] of Object.entries(w)) tensors[name] = { dtype: 'F32', shape: shapes.get(name) ?? [data.length], data };
  Object.assign(tensors, opts.extra ?? {});
  await writeSafetensors(path.join(dir, opts.file ?? 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(opts.config ?? SMALL_MAGVIT));
}
