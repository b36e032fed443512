// Random MambaOut checkpoints in timm's layout (FORMATS.md §4), for tests and benchmarks, with
// initializations that keep activations O(1) through the stages.
import * as fs from 'fs';
import * as path from 'path';

import { expectedMambaOutTensors } from '../../lib/io/mambaout-config';
import { TensorToWrite, writeSafetensors } from '../../lib/io/safetensors';
import { uniform } from './random';

export interface MambaOutShape { depths: number[]; dims: number[]; numClasses: number }
export type Weights = Record<string, Float32Array>;

/** Random weights keyed by timm name, in timm's shapes (convs OIHW). */
export function randomMambaOutWeights(s: MambaOutShape): Weights {
  const w: Weights = {};
  for (const t of expectedMambaOutTensors(s)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const fanIn = t.shape.length > 1 ? n / t.shape[0] : 1;
    if (/norm[12]?\.weight$/.test(t.name)) w[t.name] = uniform(n, 0.8, 1.2);
    else if (t.name.endsWith('.bias')) w[t.name] = uniform(n, -0.1, 0.1);
    else w[t.name] = uniform(n, -Math.sqrt(3 / fanIn), Math.sqrt(3 / fanIn));
  }
  return w;
}

/** Writes model.safetensors + config.json; `config` overrides config fields. */
export async function writeMambaOutCheckpoint(dir: string, s: MambaOutShape, w: Weights,
  opts: { dtype?: 'F32' | 'BF16'; config?: Record<string, unknown> } = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const shapes = new Map(expectedMambaOutTensors(s).map((t) => [t.name, t.shape]));
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, data] of Object.entries(w)) {
    const shape = shapes.get(name) ?? [data.length];
    tensors[name] = { dtype: opts.dtype ?? 'F32', shape, data };
  }
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    model_type: 'mambaout', depths: s.depths, dims: s.dims, num_classes: s.numClasses, ...opts.config,
  }));
}
