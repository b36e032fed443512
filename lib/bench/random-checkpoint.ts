// Random Mamba-family checkpoints (FORMATS.md §1–3) for benchmarks and tests: every tensor the config
// implies, initialized so activations stay O(1) through many layers, written as a checkpoint directory.
import * as fs from 'fs';
import * as path from 'path';

import { MambaConfig, expectedMambaTensors } from '../io/mamba-config';
import { writeSafetensors } from '../io/safetensors-write';

export type Weights = Record<string, Float32Array>;

/** Uniform [0, 1) source; tests pass a seeded one so failures replay. */
export type Rng = () => number;

const fill = (n: number, lo: number, hi: number, rng: Rng): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + (hi - lo) * rng();
  return a;
};

// One init per tensor kind, chosen by the name's suffix (fan-in = the last dim).
function initTensor(name: string, shape: number[], rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const last = shape[shape.length - 1];
  const fanIn = (k: number) => fill(n, -1 / Math.sqrt(k), 1 / Math.sqrt(k), rng);
  if (name === 'backbone.embeddings.weight') return fill(n, -1, 1, rng);
  if (name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) return fill(n, 0.8, 1.2, rng);
  if (name.endsWith('dt_proj.bias')) // softplus(bias) in [1e-3, 1e-1], as Mamba initializes the step size
    return Float32Array.from({ length: n }, () => Math.log(Math.expm1(Math.exp(Math.log(1e-3) + rng() * Math.log(100)))));
  if (name.endsWith('A_log')) return Float32Array.from({ length: n }, (_, i) => Math.log(1 + (i % last)) + 0.1 * rng());
  if (name.endsWith('mixer.D')) return fill(n, 0.5, 1.5, rng);
  if (name.endsWith('.bias')) return fill(n, -0.1, 0.1, rng);
  if (name.endsWith('router.weight')) return fill(n, -1, 1, rng); // O(1) router logits: distinct choices
  if (name.endsWith('conv1d.weight')) return fanIn(last);
  return fanIn(last); // projections, experts, lm_head
}

/** Random f32 weights keyed by tensor name for `cfg` (V: vocabulary rows). */
export function randomWeights(cfg: MambaConfig, rng: Rng = Math.random): Weights {
  const w: Weights = {};
  for (const t of expectedMambaTensors(cfg)) {
    if (t.optional) continue; // a tied lm_head is not stored
    w[t.name] = initTensor(t.name, t.shape, rng);
  }
  return w;
}

/** Writes config.json and model.safetensors (weights stored as `dtype`) into `dir`. */
export async function writeCheckpoint(dir: string, configJson: Record<string, unknown>, cfg: MambaConfig, w: Weights,
  dtype: 'F32' | 'BF16' | 'F16' = 'F32'): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson, null, 2));
  const shapes = new Map(expectedMambaTensors(cfg).map((t) => [t.name, t.shape]));
  const tensors: Parameters<typeof writeSafetensors>[1] = {};
  for (const [name, data] of Object.entries(w)) {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`writeCheckpoint: '${name}' is not a tensor of this config`);
    tensors[name] = { dtype, shape, data };
  }
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}
