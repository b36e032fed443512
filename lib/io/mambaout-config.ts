// MambaOut config.json (FORMATS.md §4) and the timm checkpoint layout: the variants, every tensor a
// checkpoint holds with its shape, and the check that a checkpoint matches its config.
import { MambakitError } from '../errors';
import type { Checkpoint } from './safetensors';
import { isRecord, numel } from './safetensors';
import { checkTensors } from './tensor-check';

export interface MambaOutConfig {
  /** femto | kobe | tiny | small | base, or null for custom depths/dims. */
  variant: string | null;
  depths: number[];
  dims: number[];
  numClasses: number;
  /** Class names (config.json label_names), else ImageNet-1k's for 1000 classes. */
  labelNames: string[] | null;
}

/** The published variants (timm mambaout_*): blocks per stage and channels per stage. */
export const MAMBAOUT_VARIANTS: Readonly<Record<string, { depths: number[]; dims: number[] }>> = {
  femto: { depths: [3, 3, 9, 3], dims: [48, 96, 192, 288] },
  kobe: { depths: [3, 3, 15, 3], dims: [48, 96, 192, 288] },
  tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 576] },
  small: { depths: [3, 4, 27, 3], dims: [96, 192, 384, 576] },
  base: { depths: [3, 4, 27, 3], dims: [128, 256, 512, 768] },
};

/** h of a gated block with C channels: timm's int(8 / 3 * C), the same double arithmetic. */
export const gatedHidden = (C: number): number => Math.trunc((8 / 3) * C);

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);
const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);
const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Reads {model_type: "mambaout", variant (or timm's architecture "mambaout_femto"), depths, dims,
 * num_classes, label_names?}: a variant alone gives its depths/dims; depths/dims given beside a variant
 * must agree with it.
 */
export function parseMambaOutConfig(json: unknown, file: string): MambaOutConfig {
  if (!isRecord(json)) throw fail(`${file}: config must be a JSON object`);
  const arch = typeof json.architecture === 'string' ? json.architecture.replace(/^mambaout_/, '').replace(/\..*$/, '') : undefined;
  const variant = json.variant ?? arch ?? null;
  if (variant !== null && (typeof variant !== 'string' || !(variant in MAMBAOUT_VARIANTS)))
    throw fail(`${file}: unknown MambaOut variant ${JSON.stringify(variant)} (known: ${Object.keys(MAMBAOUT_VARIANTS).join(', ')})`);
  const known = variant === null ? null : MAMBAOUT_VARIANTS[variant];
  const depths = json.depths ?? known?.depths, dims = json.dims ?? known?.dims;
  if (!isIntList(depths) || !isIntList(dims) || depths.length < 1 || depths.length > 8 || depths.length !== dims.length)
    throw fail(`${file}: depths and dims must be lists of 1..8 integers of the same length (or give a variant), got depths ${JSON.stringify(depths)}, dims ${JSON.stringify(dims)}`);
  if (dims.some((d) => d < 2)) throw fail(`${file}: every dim must be >= 2, got ${JSON.stringify(dims)}`);
  if (known && (!same(known.depths, depths) || !same(known.dims, dims)))
    throw fail(`${file}: variant '${variant}' has depths [${known.depths}] / dims [${known.dims}], the config says depths [${depths}] / dims [${dims}]`);
  const numClasses = json.num_classes ?? 1000;
  if (!Number.isInteger(numClasses) || (numClasses as number) < 1) throw fail(`${file}: num_classes must be a positive integer, got ${JSON.stringify(numClasses)}`);
  const labels = json.label_names;
  if (labels !== undefined && !(Array.isArray(labels) && labels.length === numClasses && labels.every((l) => typeof l === 'string')))
    throw fail(`${file}: label_names must be ${String(numClasses)} strings`);
  return { variant, depths: [...depths], dims: [...dims], numClasses: numClasses as number, labelNames: labels ? [...(labels as string[])] : null };
}

export interface MambaOutTensor {
  name: string;
  /** As timm stores it: convs [Co, Ci, k, k], linears [out, in]. */
  shape: number[];
  /** An image encoder (featureStage) does not read it: stages after the feature stage and the head. Checked when present. */
  unused?: true;
}

/**
 * Every tensor of a timm mambaout_* state dict, in model order. With `featureStage` (an image encoder that
 * stops after that stage) the later stages and the head are marked `unused`.
 */
export function expectedMambaOutTensors(cfg: Pick<MambaOutConfig, 'depths' | 'dims' | 'numClasses'>, featureStage?: number): MambaOutTensor[] {
  const out: MambaOutTensor[] = [];
  let unused = false; // from the first tensor after the feature stage on
  const add = (name: string, ...shape: number[]): void => void out.push(unused ? { name, shape, unused } : { name, shape });
  const norm = (p: string, C: number): void => (add(`${p}.weight`, C), add(`${p}.bias`, C));
  const C0 = cfg.dims[0], C3 = cfg.dims[cfg.dims.length - 1];
  add('stem.conv1.weight', Math.floor(C0 / 2), 3, 3, 3), add('stem.conv1.bias', Math.floor(C0 / 2));
  norm('stem.norm1', Math.floor(C0 / 2));
  add('stem.conv2.weight', C0, Math.floor(C0 / 2), 3, 3), add('stem.conv2.bias', C0);
  norm('stem.norm2', C0);
  cfg.dims.forEach((C, i) => {
    unused = featureStage !== undefined && i > featureStage;
    if (i > 0) {
      add(`stages.${i}.downsample.conv.weight`, C, cfg.dims[i - 1], 3, 3), add(`stages.${i}.downsample.conv.bias`, C);
      norm(`stages.${i}.downsample.norm`, C);
    }
    const h = gatedHidden(C);
    for (let j = 0; j < cfg.depths[i]; ++j) {
      const p = `stages.${i}.blocks.${j}`;
      norm(`${p}.norm`, C);
      add(`${p}.fc1.weight`, 2 * h, C), add(`${p}.fc1.bias`, 2 * h);
      add(`${p}.conv.weight`, C, 1, 7, 7), add(`${p}.conv.bias`, C);
      add(`${p}.fc2.weight`, C, h), add(`${p}.fc2.bias`, C);
    }
  });
  unused = featureStage !== undefined;
  norm('head.norm', C3);
  add('head.pre_logits.fc.weight', 4 * C3, C3), add('head.pre_logits.fc.bias', 4 * C3);
  norm('head.pre_logits.norm', 4 * C3);
  add('head.fc.weight', cfg.numClasses, 4 * C3), add('head.fc.bias', cfg.numClasses);
  return out;
}

/** Parameters of a configuration (from the shapes alone: nothing is allocated). */
export const mambaOutParams = (cfg: Pick<MambaOutConfig, 'depths' | 'dims' | 'numClasses'>): number =>
  expectedMambaOutTensors(cfg).reduce((a, t) => a + numel(t.shape), 0);

/** Where a MambaOut's tensors sit in a checkpoint: under a name prefix (a VLM's 'vision_tower.'), as an encoder. */
export interface MambaOutPart {
  /** Prepended to every timm name; only names under it are this model's (default ''). */
  prefix?: string;
  /** An image encoder stopping after this stage: later stages and the head may be absent (checked when present). */
  featureStage?: number;
}

/**
 * The checkpoint must hold exactly the config's tensors with timm's names and shapes: a missing,
 * misshapen or extra tensor is E_FORMAT naming the file, the tensor, expected and found. A checkpoint
 * in the original MambaOut repository's names gets a message saying how to convert it. With a prefix,
 * only the names under it are checked (the rest belong to the other parts of the checkpoint).
 */
export function validateMambaOutCheckpoint(cfg: MambaOutConfig, ckpt: Checkpoint, part: MambaOutPart = {}): void {
  const prefix = part.prefix ?? '';
  if (ckpt.names.some((n) => n.startsWith(`${prefix}downsample_layers.`)))
    throw fail(`${ckpt.dir}: tensor names like '${prefix}downsample_layers.0.0.weight' are the original MambaOut repository's layout; ` +
      `mambakit reads timm's (stem.*, stages.{i}.downsample.*, stages.{i}.blocks.{j}.*, head.*): convert with timm's ` +
      `mambaout checkpoint_filter_fn (see README, "MambaOut image classification")`);
  const expected = expectedMambaOutTensors(cfg, part.featureStage).map((t) => ({ ...t, optional: t.unused }));
  checkTensors(ckpt, expected, { prefix, floats: true, context: ` (depths [${cfg.depths}], dims [${cfg.dims}], ${cfg.numClasses} classes)` });
}
