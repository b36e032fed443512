// The editors format (docs/editors-format.md): a directory with editors.json (what each editor edits:
// site, layer, positions, rank, formula, activation) and editors.safetensors (<name>.R [r, d],
// <name>.W [r, d], <name>.b [r]). Read and checked here, on the host; lib/editors/registry.ts puts the
// weights on a model's device.
import * as fs from 'fs';
import * as path from 'path';

import { MambakitError } from '../errors';
import { TensorToWrite, isRecord, loadTensor, readSafetensorsHeader, writeSafetensors } from '../io/safetensors';
import { orthonormalRows, rowDeviation } from './orthonormal';

export type EditorSite = 'block' | 'encoder' | 'projector';
export type EditorFormula = 'pyreft' | 'mrt';
export type EditorActivation = 'identity' | 'relu' | 'gelu' | 'silu' | 'tanh';
export type EditorPositions =
  | { kind: 'all' }
  | { kind: 'prefix'; n: number; afterImage?: boolean }
  | { kind: 'suffix'; n: number; excludeLast?: boolean }
  | { kind: 'image' }
  | { kind: 'list'; positions: readonly number[] };

/** What one editor edits. */
export interface EditorSpec {
  name: string;
  /** block: after the model's block `layer` (a VLM's language model); encoder: after a VLM vision block; projector: a VLM's projector output. */
  site: EditorSite;
  layer: number;
  positions: EditorPositions;
  rank: number;
  formula: EditorFormula;
  activation: EditorActivation;
  /** Also edit every decoded token (default: prefill only, MRT's setting). */
  decode: boolean;
}

/** An editor with its weights (f32, row-major): R [rank, hidden] with orthonormal rows, W [rank, hidden], b [rank]. */
export interface Editor extends EditorSpec {
  hidden: number;
  R: Float32Array;
  W: Float32Array;
  b: Float32Array;
}

/** A set of editors as read from a directory: what they were made for, and the editors. */
export interface EditorSet {
  /** hiddenSize: the (language) model's stream width; visionHiddenSize: a VLM encoder's, for encoder editors. */
  model: { hiddenSize: number; visionHiddenSize?: number; numLayers?: number; modelType?: string };
  source: string;
  editors: Editor[];
}

export interface ReadEditorsOptions {
  /** R without orthonormal rows: orthonormalize it (QR, sign fixed as MRT does) instead of refusing. */
  orthonormalize?: boolean;
}

const SITES: readonly EditorSite[] = ['block', 'encoder', 'projector'];
const FORMULAS: readonly EditorFormula[] = ['pyreft', 'mrt'];
const ACTIVATIONS: readonly EditorActivation[] = ['identity', 'relu', 'gelu', 'silu', 'tanh'];
/** Largest |R Rᵀ − I| accepted as orthonormal (f32 weights, bf16 files round to ~4e-3 relative: see the docs). */
export const ORTHONORMAL_TOLERANCE = 1e-3;

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);
const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

function positionsOf(v: unknown, where: string): EditorPositions {
  if (!isRecord(v) || typeof v.kind !== 'string') throw fail(`${where}.positions must be an object with a kind`);
  switch (v.kind) {
    case 'all':
    case 'image':
      return { kind: v.kind };
    case 'prefix':
      if (!isInt(v.n, 1)) throw fail(`${where}.positions.n must be an integer ≥ 1, got ${String(v.n)}`);
      if (v.afterImage !== undefined && typeof v.afterImage !== 'boolean') throw fail(`${where}.positions.afterImage must be a boolean`);
      return { kind: 'prefix', n: v.n, ...(v.afterImage === true && { afterImage: true }) };
    case 'suffix':
      if (!isInt(v.n, 1)) throw fail(`${where}.positions.n must be an integer ≥ 1, got ${String(v.n)}`);
      if (v.excludeLast !== undefined && typeof v.excludeLast !== 'boolean') throw fail(`${where}.positions.excludeLast must be a boolean`);
      return { kind: 'suffix', n: v.n, excludeLast: v.excludeLast === true };
    case 'list': {
      const p = v.positions;
      if (!Array.isArray(p) || p.length === 0 || !p.every((x) => isInt(x, 0)) || new Set(p).size !== p.length)
        throw fail(`${where}.positions.positions must be a non-empty list of distinct integers ≥ 0`);
      return { kind: 'list', positions: p as number[] };
    }
    default:
      throw fail(`${where}.positions.kind '${v.kind}' is not one of all, prefix, suffix, image, list`);
  }
}

/** Parses editors.json (`file` names it in errors). */
export function parseEditorsJson(json: unknown, file: string): { model: EditorSet['model']; source: string; specs: EditorSpec[] } {
  if (!isRecord(json)) throw fail(`${file}: must be a JSON object`);
  if (json.format !== 'mambakit-editors') throw fail(`${file}: format must be 'mambakit-editors', got ${JSON.stringify(json.format)}`);
  if (json.version !== 1) throw fail(`${file}: version ${JSON.stringify(json.version)} is not supported (1 is)`);
  const m = json.model;
  if (!isRecord(m) || !isInt(m.hidden_size, 1)) throw fail(`${file}: model.hidden_size (the width the editors were made for) is required`);
  if (m.num_layers !== undefined && !isInt(m.num_layers, 1)) throw fail(`${file}: model.num_layers must be an integer ≥ 1`);
  if (m.model_type !== undefined && typeof m.model_type !== 'string') throw fail(`${file}: model.model_type must be a string`);
  if (m.vision_hidden_size !== undefined && !isInt(m.vision_hidden_size, 1)) throw fail(`${file}: model.vision_hidden_size must be an integer ≥ 1`);
  if (!Array.isArray(json.editors) || json.editors.length === 0) throw fail(`${file}: editors must be a non-empty list`);
  const names = new Set<string>();
  const specs = json.editors.map((e: unknown, i: number): EditorSpec => {
    const where = `${file}: editors[${i}]`;
    if (!isRecord(e)) throw fail(`${where} must be an object`);
    if (typeof e.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(e.name)) throw fail(`${where}.name must match [A-Za-z0-9_.-]+`);
    if (names.has(e.name)) throw fail(`${where}.name '${e.name}' is repeated`);
    names.add(e.name);
    if (!SITES.includes(e.site as EditorSite)) throw fail(`${where}.site must be one of ${SITES.join(', ')}, got ${JSON.stringify(e.site)}`);
    const site = e.site as EditorSite;
    if (site !== 'projector' && !isInt(e.layer, 0)) throw fail(`${where}.layer must be an integer ≥ 0 (the block whose output is edited)`);
    if (!isInt(e.rank, 1)) throw fail(`${where}.rank must be an integer ≥ 1`);
    const formula = (e.formula ?? 'pyreft') as EditorFormula;
    if (!FORMULAS.includes(formula)) throw fail(`${where}.formula must be one of ${FORMULAS.join(', ')}`);
    const activation = (e.activation ?? 'identity') as EditorActivation;
    if (!ACTIVATIONS.includes(activation)) throw fail(`${where}.activation must be one of ${ACTIVATIONS.join(', ')}`);
    if (e.decode !== undefined && typeof e.decode !== 'boolean') throw fail(`${where}.decode must be a boolean`);
    return {
      name: e.name, site, layer: site === 'projector' ? 0 : (e.layer as number), positions: positionsOf(e.positions, where),
      rank: e.rank, formula, activation, decode: e.decode === true,
    };
  });
  return {
    model: {
      hiddenSize: m.hidden_size, visionHiddenSize: m.vision_hidden_size as number | undefined,
      numLayers: m.num_layers as number | undefined, modelType: m.model_type as string | undefined,
    },
    source: typeof json.source === 'string' ? json.source : 'mambakit',
    specs,
  };
}

/** Reads an editors directory: editors.json + editors.safetensors, every tensor's shape and R's rows checked. */
export async function readEditors(dir: string, opts: ReadEditorsOptions = {}): Promise<EditorSet> {
  const jsonFile = path.join(dir, 'editors.json'), stFile = path.join(dir, 'editors.safetensors');
  let json: unknown;
  try {
    json = JSON.parse(await fs.promises.readFile(jsonFile, 'utf8'));
  } catch (e) {
    throw fail(`${jsonFile}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `not valid JSON: ${(e as Error).message}`}`);
  }
  const { model, source, specs } = parseEditorsJson(json, jsonFile);
  const header = await readSafetensorsHeader(stFile);
  const expected = new Set<string>();
  const read = async (name: string, shape: number[]): Promise<Float32Array> => {
    expected.add(name);
    const entry = header.tensors.get(name);
    if (!entry) throw fail(`${stFile}: tensor '${name}' is missing`);
    if (entry.shape.length !== shape.length || entry.shape.some((s, i) => s !== shape[i]))
      throw fail(`${stFile}: tensor '${name}' must be [${shape.join(', ')}], got [${entry.shape.join(', ')}]`);
    if (entry.dtype !== 'F32' && entry.dtype !== 'BF16' && entry.dtype !== 'F16') throw fail(`${stFile}: tensor '${name}' must be F32, BF16 or F16, got ${entry.dtype}`);
    const t = await loadTensor(stFile, entry, { dtype: 'f32' });
    try {
      return (await t.data()) as Float32Array;
    } finally {
      t.dispose();
    }
  };
  const editors: Editor[] = [];
  for (const s of specs) {
    // encoder editors are as wide as the vision stream; block and projector editors as the model's
    const d = s.site === 'encoder' ? model.visionHiddenSize : model.hiddenSize;
    if (d === undefined) throw fail(`${jsonFile}: editor '${s.name}' edits the vision encoder: model.vision_hidden_size is required`);
    if (s.rank > d) throw new MambakitError('E_SHAPE', `${jsonFile}: editor '${s.name}': rank ${s.rank} exceeds the hidden size ${d}`);
    let R = await read(`${s.name}.R`, [s.rank, d]);
    const W = await read(`${s.name}.W`, [s.rank, d]);
    const b = await read(`${s.name}.b`, [s.rank]);
    const dev = rowDeviation(R, s.rank, d);
    if (dev > ORTHONORMAL_TOLERANCE) {
      if (!opts.orthonormalize)
        throw fail(`${stFile}: editor '${s.name}': R's rows are not orthonormal (max |R Rᵀ − I| = ${dev.toExponential(2)} > ${ORTHONORMAL_TOLERANCE}); pass { orthonormalize: true } to orthonormalize it`);
      R = orthonormalRows(R, s.rank, d);
    }
    editors.push({ ...s, hidden: d, R, W, b });
  }
  const extra = [...header.tensors.keys()].filter((n) => !expected.has(n));
  if (extra.length) throw fail(`${stFile}: unexpected tensors ${extra.slice(0, 5).map((n) => `'${n}'`).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  return { model, source, editors };
}

/** Writes a set in the editors format (weights F32, or BF16 when asked). */
export async function writeEditors(dir: string, set: EditorSet, opts: { dtype?: 'F32' | 'BF16' } = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  await fs.promises.mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const e of set.editors) {
    tensors[`${e.name}.R`] = { dtype, shape: [e.rank, e.hidden], data: e.R };
    tensors[`${e.name}.W`] = { dtype, shape: [e.rank, e.hidden], data: e.W };
    tensors[`${e.name}.b`] = { dtype, shape: [e.rank], data: e.b };
  }
  await writeSafetensors(path.join(dir, 'editors.safetensors'), tensors);
  const json = {
    format: 'mambakit-editors', version: 1, source: set.source,
    model: {
      hidden_size: set.model.hiddenSize, ...(set.model.visionHiddenSize !== undefined && { vision_hidden_size: set.model.visionHiddenSize }), ...(set.model.numLayers !== undefined && { num_layers: set.model.numLayers }), ...(set.model.modelType !== undefined && { model_type: set.model.modelType }) },
    editors: set.editors.map(({ name, site, layer, positions, rank, formula, activation, decode }) => ({ name, site, ...(site !== 'projector' && { layer }), positions, rank, formula, activation, decode })),
  };
  await fs.promises.writeFile(path.join(dir, 'editors.json'), JSON.stringify(json, null, 2) + '\n');
}
