// scripts/convert-editors.py (pyreft and MRT checkpoints -> the editors format) run through python3 on
// fixtures test/helpers/write-torch-bin.py writes in torch.save's zip format without torch, from random
// weights made here; the outputs are read back with lib/io's safetensors reader. Skipped (by detection)
// where python3 or numpy is missing.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readEditors } from '../../lib';
import { loadTensor, readSafetensorsHeader, writeSafetensors } from '../../lib/io/safetensors';
import { expectEqual } from '../helpers/compare';
import { SEED, uniform } from '../helpers/random';
import { roundBf16 } from '../helpers/ref';

const ROOT = path.resolve(__dirname, '../..');
const CONVERT = path.join(ROOT, 'scripts', 'convert-editors.py');
const WRITER = path.join(ROOT, 'test', 'helpers', 'write-torch-bin.py');
const pyOk = (code: string): boolean => spawnSync('python3', ['-c', code], { stdio: 'ignore' }).status === 0;
const HAVE_NUMPY = pyOk('import numpy');
const HAVE_TORCH = HAVE_NUMPY && pyOk('import torch');

interface Run { status: number | null; stdout: string; stderr: string }
// The converter reads .bin files itself unless told otherwise (torch, where installed, is checked once below).
function py(args: string[], env: Record<string, string | undefined> = { MAMBAKIT_NO_TORCH: '1' }): Run {
  const r = spawnSync('python3', args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function ok(r: Run): Run {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r;
}
/** A refusal: exit status 1 and one line naming the file and the problem. */
function refused(r: Run, ...patterns: (RegExp | string)[]): void {
  expect(r.status).toBe(1);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('convert-editors: note:'));
  expect(lines).toHaveLength(1);
  for (const p of patterns) expect(lines[0]).toMatch(p);
}

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-convert-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeFixture(kind: 'pyreft' | 'mrt', out: string, spec: unknown): string {
  const specFile = path.join(dir, `${path.basename(out)}.spec.json`);
  fs.writeFileSync(specFile, JSON.stringify(spec));
  ok(py([WRITER, kind, out, specFile]));
  return out;
}

// --- float64 linear algebra for the expectations ------------------------------------------------------
type Mat = { rows: number; cols: number; a: Float64Array }; // row-major
const mat = (rows: number, cols: number, v: ArrayLike<number>): Mat => ({ rows, cols, a: Float64Array.from(v) });
const at = (m: Mat, i: number, j: number): number => m.a[i * m.cols + j];
function transpose(m: Mat): Mat {
  const t = new Float64Array(m.a.length);
  for (let i = 0; i < m.rows; ++i) for (let j = 0; j < m.cols; ++j) t[j * m.rows + i] = at(m, i, j);
  return { rows: m.cols, cols: m.rows, a: t };
}
function matmul(x: Mat, y: Mat): Mat {
  const o = new Float64Array(x.rows * y.cols);
  for (let i = 0; i < x.rows; ++i)
    for (let k = 0; k < x.cols; ++k) {
      const v = at(x, i, k);
      for (let j = 0; j < y.cols; ++j) o[i * y.cols + j] += v * at(y, k, j);
    }
  return { rows: x.rows, cols: y.cols, a: o };
}
/** Q of a tall [d, r] matrix by Gram-Schmidt (twice, for stability): the QR factor with diag(R) > 0. */
function gramSchmidt(m: Mat): Mat {
  const { rows: d, cols: r } = m;
  const q = Float64Array.from(m.a);
  for (let j = 0; j < r; ++j) {
    for (let pass = 0; pass < 2; ++pass)
      for (let k = 0; k < j; ++k) {
        let dot = 0;
        for (let i = 0; i < d; ++i) dot += q[i * r + k] * q[i * r + j];
        for (let i = 0; i < d; ++i) q[i * r + j] -= dot * q[i * r + k];
      }
    let n = 0;
    for (let i = 0; i < d; ++i) n += q[i * r + j] ** 2;
    for (let i = 0; i < d; ++i) q[i * r + j] /= Math.sqrt(n);
  }
  return { rows: d, cols: r, a: q };
}
/** torch.nn.utils.parametrizations.orthogonal's tall-matrix weight from its state (householder map, base). */
function torchOrthogonal(original: Mat, base: Mat): Mat {
  const { rows: n, cols: k } = original;
  let q = new Float64Array(n * k);
  for (let j = 0; j < k; ++j) q[j * k + j] = 1;
  for (let j = k - 1; j >= 0; --j) {
    const v = new Float64Array(n);
    v[j] = 1;
    for (let i = j + 1; i < n; ++i) v[i] = at(original, i, j);
    const tau = 2 / v.reduce((s, x) => s + x * x, 0);
    const vq = new Float64Array(k);
    for (let i = 0; i < n; ++i) for (let c = 0; c < k; ++c) vq[c] += v[i] * q[i * k + c];
    for (let i = 0; i < n; ++i) for (let c = 0; c < k; ++c) q[i * k + c] -= tau * v[i] * vq[c];
  }
  q = q.map((x, idx) => x * Math.trunc(at(original, idx % k, idx % k)));
  return matmul(base, { rows: n, cols: k, a: q });
}
function rowDeviation(R: ArrayLike<number>, r: number, d: number): number {
  let dev = 0;
  for (let i = 0; i < r; ++i)
    for (let j = 0; j < r; ++j) {
      let s = 0;
      for (let c = 0; c < d; ++c) s += R[i * d + c] * R[j * d + c];
      dev = Math.max(dev, Math.abs(s - (i === j ? 1 : 0)));
    }
  return dev;
}
function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  let e = 0;
  for (let i = 0; i < expected.length; ++i) e = Math.max(e, Math.abs(actual[i] - expected[i]));
  if (!(e <= tol)) throw new Error(`${what}: max |error| ${e.toExponential(3)} > ${tol} (seed ${SEED})`);
}
const f32 = (v: ArrayLike<number>): Float32Array => Float32Array.from(v);
const bf16 = (v: ArrayLike<number>): Float32Array => Float32Array.from(v, roundBf16);
/** Random values away from zero (a zero would hide a dropped tensor). */
const nonzero = (n: number, scale = 1): Float32Array => uniform(n, 0.2, 1).map((x, i) => (i % 2 ? -x : x) * scale);
const randomOrthonormal = (d: number, r: number): Float32Array => f32(gramSchmidt(mat(d, r, uniform(d * r))).a);

// --- reading a converted directory --------------------------------------------------------------------
interface EditorJson {
  name: string; site: string; layer?: number; rank: number; formula: string; activation: string; decode: boolean;
  positions: Record<string, unknown>;
}
interface Out {
  json: { format: string; version: number; model: { hidden_size: number; num_layers?: number }; source: string; editors: EditorJson[] };
  names: string[];
  get(name: string): Promise<{ dtype: string; shape: readonly number[]; data: Float32Array }>;
}
async function readOut(out: string): Promise<Out> {
  const json = JSON.parse(fs.readFileSync(path.join(out, 'editors.json'), 'utf8')) as Out['json'];
  const file = path.join(out, 'editors.safetensors');
  const h = await readSafetensorsHeader(file);
  return {
    json,
    names: [...h.tensors.keys()],
    async get(name) {
      const e = h.tensors.get(name);
      if (!e) throw new Error(`${file} has no tensor '${name}'`);
      const t = await loadTensor(file, e, { dtype: 'f32' });
      try {
        return { dtype: e.dtype, shape: e.shape, data: (await t.data()) as Float32Array };
      } finally {
        t.dispose();
      }
    },
  };
}
function expectTensorSet(o: Out): void {
  expect(o.json.format).toBe('mambakit-editors');
  expect(o.json.version).toBe(1);
  expect(o.names.sort()).toEqual(o.json.editors.flatMap((e) => [`${e.name}.R`, `${e.name}.W`, `${e.name}.b`]).sort());
}

const D = 16;
const RANK = 4;

interface LoreftTruth { layer: number; rotate: Float32Array; W: Float32Array; b: Float32Array }
function loreft(layer: number): { iv: unknown; truth: LoreftTruth } {
  const truth = { layer, rotate: randomOrthonormal(D, RANK), W: nonzero(RANK * D), b: nonzero(RANK) };
  return { truth, iv: { layer, type: 'LoreftIntervention', rank: RANK, tensors: { rotate: [...truth.rotate], W: [...truth.W], b: [...truth.b] } } };
}
async function expectLoreft(o: Out, name: string, t: LoreftTruth): Promise<void> {
  const R = await o.get(`${name}.R`), W = await o.get(`${name}.W`), b = await o.get(`${name}.b`);
  expect([R.dtype, R.shape, W.shape, b.shape]).toEqual(['F32', [RANK, D], [RANK, D], [RANK]]);
  expectEqual(R.data, f32(transpose(mat(D, RANK, t.rotate)).a), `${name}.R = rotate_layerᵀ`);
  expectEqual(W.data, bf16(t.W), `${name}.W`); // learned_source is bf16 in pyreft (its default dtype)
  expectEqual(b.data, bf16(t.b), `${name}.b`);
}

(HAVE_NUMPY ? describe : describe.skip)('convert-editors.py pyreft', () => {
  test('LoReFT, f7+l7 without shared weights: the first half of the interventions edits the first positions', async () => {
    // examples/loreft/train.py: "f7+l7" without share_weights doubles the layer list ([2, 5, 2, 5])
    const ivs = [loreft(2), loreft(5), loreft(2), loreft(5)];
    const src = writeFixture('pyreft', path.join(dir, 'reft'), { hidden: D, interventions: ivs.map((x) => x.iv) });
    expect(fs.readdirSync(src).sort()).toEqual(['config.json', 'intkey_layer_2_comp_block_output_unit_pos_nunit_1#0.bin',
      'intkey_layer_2_comp_block_output_unit_pos_nunit_1#1.bin', 'intkey_layer_5_comp_block_output_unit_pos_nunit_1#0.bin',
      'intkey_layer_5_comp_block_output_unit_pos_nunit_1#1.bin']);
    const out = path.join(dir, 'out');
    const r = ok(py([CONVERT, 'pyreft', src, out, '--positions', 'f7+l7', '--hidden', String(D)]));
    expect(r.stderr).toMatch(/act_fn/); // the note that pyreft does not save the activation
    const o = await readOut(out);
    expectTensorSet(o);
    expect(o.json.model).toEqual({ hidden_size: D });
    expect(o.json.source).toBe('pyreft');
    const common = { site: 'block', rank: RANK, formula: 'pyreft', activation: 'identity', decode: false };
    expect(o.json.editors).toEqual([
      { name: 'l2.prefix', layer: 2, positions: { kind: 'prefix', n: 7 }, ...common },
      { name: 'l5.prefix', layer: 5, positions: { kind: 'prefix', n: 7 }, ...common },
      { name: 'l2.suffix', layer: 2, positions: { kind: 'suffix', n: 7, excludeLast: false }, ...common },
      { name: 'l5.suffix', layer: 5, positions: { kind: 'suffix', n: 7, excludeLast: false }, ...common },
    ]);
    for (const [name, i] of [['l2.prefix', 0], ['l5.prefix', 1], ['l2.suffix', 2], ['l5.suffix', 3]] as const) await expectLoreft(o, name, ivs[i].truth);
    // mambakit's own loader takes the converted set
    expect((await readEditors(out)).editors.map((e) => e.name)).toEqual(['l2.prefix', 'l5.prefix', 'l2.suffix', 'l5.suffix']);
    // --act, --decode and --num-layers land in editors.json
    const out2 = path.join(dir, 'out2');
    ok(py([CONVERT, 'pyreft', src, out2, '--positions', 'f7+l7', '--act', 'relu', '--decode', '--num-layers', '6']));
    const o2 = await readOut(out2);
    expect(o2.json.model).toEqual({ hidden_size: D, num_layers: 6 });
    expect(o2.json.editors.every((e) => e.activation === 'relu' && e.decode)).toBe(true);
  });

  test('shared weights (one intervention per layer for f3+l2): the same tensors under a prefix and a suffix editor', async () => {
    const ivs = [loreft(1), loreft(3)];
    const src = writeFixture('pyreft', path.join(dir, 'reft'), { hidden: D, key_style: 'old', interventions: ivs.map((x) => x.iv) });
    expect(fs.readdirSync(src)).toContain('intkey_layer.1.comp.block_output.unit.pos.nunit.1#0.bin'); // pyvene before 2025-02
    const out = path.join(dir, 'out');
    ok(py([CONVERT, 'pyreft', src, out, '--positions', 'f3+l2']));
    const o = await readOut(out);
    expectTensorSet(o);
    expect(o.json.editors.map((e) => [e.name, e.layer, e.positions])).toEqual([
      ['l1.prefix', 1, { kind: 'prefix', n: 3 }], ['l1.suffix', 1, { kind: 'suffix', n: 2, excludeLast: false }],
      ['l3.prefix', 3, { kind: 'prefix', n: 3 }], ['l3.suffix', 3, { kind: 'suffix', n: 2, excludeLast: false }],
    ]);
    for (const [name, i] of [['l1.prefix', 0], ['l1.suffix', 0], ['l3.prefix', 1], ['l3.suffix', 1]] as const) await expectLoreft(o, name, ivs[i].truth);
    // without --positions every editor edits all positions (pyreft does not save them), with a note
    const r = ok(py([CONVERT, 'pyreft', src, path.join(dir, 'all')]));
    expect(r.stderr).toMatch(/positions/);
    const all = await readOut(path.join(dir, 'all'));
    expect(all.json.editors.map((e) => [e.name, e.positions])).toEqual([['l1', { kind: 'all' }], ['l3', { kind: 'all' }]]);
    // --share-weights no on two interventions: the first gets the first positions, the second the last
    ok(py([CONVERT, 'pyreft', src, path.join(dir, 'split'), '--positions', 'f3+l2', '--share-weights', 'no']));
    const split = await readOut(path.join(dir, 'split'));
    expect(split.json.editors.map((e) => e.name)).toEqual(['l1.prefix', 'l3.suffix']);
  });

  test('ConsReFT, LobiReFT and DiReFT: the parametrized rotate layer rebuilt, each mapped to an exact formula', async () => {
    const r = 3;
    const base = mat(D, D, gramSchmidt(mat(D, D, uniform(D * D))).a.map(Math.fround)); // torch keeps an orthogonal base
    const negId = new Float32Array(D * r);
    for (let j = 0; j < r; ++j) negId[j * r + j] = -1; // right_inverse's -Id: the fresh parametrization
    const trained = Float32Array.from(uniform(D * r, -0.3, 0.3), (x, i) => {
      const [row, col] = [Math.floor(i / r), i % r];
      return row === col ? [-1, 1, -1.5][col] : row > col ? x : 0.9; // diag ±1 (.int() truncates -1.5), upper part unused
    });
    const sourceC = nonzero(r), sourceL = nonzero(r), Wd = nonzero(r * D), bd = nonzero(r);
    const rot = (original: Float32Array) => ({ original: [...original], base: [...base.a] });
    const src = writeFixture('pyreft', path.join(dir, 'reft'), {
      hidden: D,
      interventions: [
        { layer: 0, type: 'ConsreftIntervention', rank: r, tensors: { ...rot(negId), source: [...sourceC] } },
        { layer: 1, type: 'LobireftIntervention', rank: r, tensors: { ...rot(trained), source: [...sourceL] } },
        { layer: 2, type: 'DireftIntervention', rank: r, tensors: { ...rot(negId), W: [...Wd], b: [...bd] } },
      ],
    });
    const out = path.join(dir, 'out');
    ok(py([CONVERT, 'pyreft', src, out, '--positions', 'l4', '--act', 'gelu']));
    const o = await readOut(out);
    expectTensorSet(o);
    const suffix = { kind: 'suffix', n: 4, excludeLast: false };
    expect(o.json.editors.map((e) => [e.name, e.layer, e.positions, e.formula, e.activation, e.rank])).toEqual([
      ['l0', 0, suffix, 'pyreft', 'identity', r], // h + Rᵀ(b − Rh): W = 0
      ['l1', 1, suffix, 'pyreft', 'identity', r], // h + Rᵀb: W = R
      ['l2', 2, suffix, 'mrt', 'gelu', r], // h + Rᵀ act(Wh + b) = h + Rᵀ act((W + R)h + b − Rh)
    ]);
    // a fresh parametrization is base[:, :r] exactly
    const baseCols = f32(transpose({ rows: D, cols: r, a: Float64Array.from({ length: D * r }, (_, i) => at(base, Math.floor(i / r), i % r)) }).a);
    const c = { R: await o.get('l0.R'), W: await o.get('l0.W'), b: await o.get('l0.b') };
    expectEqual(c.R.data, baseCols, 'ConsReFT R');
    expectEqual(c.W.data, new Float32Array(r * D), 'ConsReFT W = 0');
    expectEqual(c.b.data, sourceC, 'ConsReFT b');
    const l = { R: await o.get('l1.R'), W: await o.get('l1.W'), b: await o.get('l1.b') };
    expectNear(l.R.data, transpose(torchOrthogonal(mat(D, r, trained), base)).a, 1e-6, 'LobiReFT R (Householder map)');
    expect(rowDeviation(l.R.data, r, D)).toBeLessThan(1e-5);
    expectEqual(l.W.data, l.R.data, 'LobiReFT W = R');
    expectEqual(l.b.data, sourceL, 'LobiReFT b');
    const di = { R: await o.get('l2.R'), W: await o.get('l2.W'), b: await o.get('l2.b') };
    expectEqual(di.R.data, baseCols, 'DiReFT R');
    expectEqual(di.W.data, Float32Array.from(bf16(Wd), (w, i) => w + baseCols[i]), 'DiReFT W + R');
    expectEqual(di.b.data, bf16(bd), 'DiReFT b');
  });

  test('refusals: NoReFT, an unknown type, another component, a missing file, shape mismatches, model weights', () => {
    const one = (name: string, iv: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
      writeFixture('pyreft', path.join(dir, name), { hidden: D, interventions: [{ ...(loreft(3).iv as object), ...iv }], ...extra });
    const out = path.join(dir, 'out');
    const noreft = one('noreft', { type: 'NoreftIntervention', tensors: { proj: [...nonzero(RANK * D)], W: [...nonzero(RANK * D)], b: [...nonzero(RANK)] } });
    refused(py([CONVERT, 'pyreft', noreft, out]), 'intkey_layer_3_comp_block_output_unit_pos_nunit_1#0.bin', /NoreftIntervention cannot be converted/, /orthonormal/);
    const vanilla = one('vanilla', { type_string: "<class 'pyvene.models.interventions.VanillaIntervention'>" });
    refused(py([CONVERT, 'pyreft', vanilla, out]), /intervention type VanillaIntervention is not supported/);
    refused(py([CONVERT, 'pyreft', one('mlp', { component: 'mlp_output' }), out]), 'config.json', /component 'mlp_output' is not a block output/);
    refused(py([CONVERT, 'pyreft', one('gone', { omit_file: true }), out]), 'intkey_layer_3_comp_block_output_unit_pos_nunit_1#0.bin: not found');
    refused(py([CONVERT, 'pyreft', one('rank', { low_rank_dimension: RANK + 1 }), out]), /shape mismatch: config.json says low_rank_dimension 5/);
    refused(py([CONVERT, 'pyreft', one('wide', {}), out, '--hidden', '32']), /shape mismatch: the interventions are 16 wide, --hidden says 32/);
    const lora = one('lora', {});
    fs.writeFileSync(path.join(lora, 'pytorch_model.bin'), '');
    refused(py([CONVERT, 'pyreft', lora, out]), 'pytorch_model.bin', /model weights/);
    refused(py([CONVERT, 'pyreft', path.join(dir, 'nothing'), out]), `${path.join(dir, 'nothing')}: not found`);
    refused(py([CONVERT, 'pyreft', one('pos', {}), out, '--positions', 'x3']), /--positions: 'x3' is not one of/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

// --- MRT -------------------------------------------------------------------------------------------------
const LM = { hidden: 16, layers: 3, rank: 4 };
const VISION = { hidden: 8, layers: 4, rt_layers: [1, 2], rank: 3 }; // MRT: 24 CLIP layers, editors on 1..22
const PROJ = { hidden: 16, rank: 3 };
const VISION_RT = 'model.vision_tower.vision_tower.vision_model.encoder.vision_rt';
interface RtTruth { d: number; r: number; rotate: Float32Array; W: Float32Array; b: Float32Array }
function mrtTruth(): Record<string, RtTruth> {
  const t: Record<string, RtTruth> = {};
  const mk = (name: string, d: number, r: number): void => {
    t[name] = { d, r, rotate: uniform(d * r), W: nonzero(r * d), b: nonzero(r) }; // a raw (not orthonormal) rotation
  };
  for (const side of ['prefix', 'suffix']) for (let i = 0; i < LM.layers; ++i) mk(`model.${side}_lm_rt.${i}`, LM.hidden, LM.rank);
  mk('model.mm_rt', PROJ.hidden, PROJ.rank);
  for (const i of VISION.rt_layers) mk(`${VISION_RT}.${i}`, VISION.hidden, VISION.rank);
  return t;
}
const mrtSpec = (t: Record<string, RtTruth>): unknown => ({
  lm: LM, projector: PROJ, vision: VISION,
  tensors: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { rotate: [...v.rotate], W: [...v.W], b: [...v.b] }])),
});
/** MRT's get_orthogonal_weight in float64: Q of the [d, r] weight with diag(R) ≥ 0, as rows [r, d]. */
const mrtR = (t: RtTruth): Float64Array => transpose(gramSchmidt(mat(t.d, t.r, t.rotate))).a;

(HAVE_NUMPY ? describe : describe.skip)('convert-editors.py mrt', () => {
  test('rt_modules.bin: vision-encoder, projector and LM prefix/suffix editors, R the sign-fixed QR of the raw weight', async () => {
    const truth = mrtTruth();
    const bin = writeFixture('mrt', path.join(dir, 'rt_modules.bin'), mrtSpec(truth));
    const out = path.join(dir, 'out');
    ok(py([CONVERT, 'mrt', dir, out])); // the directory holding rt_modules.bin
    const o = await readOut(out);
    expectTensorSet(o);
    expect(o.json.model).toEqual({ hidden_size: LM.hidden, vision_hidden_size: VISION.hidden, num_layers: LM.layers });
    const loaded = await readEditors(out); // mambakit's own loader: encoder editors at the vision width
    expect(loaded.editors.map((e) => [e.name, e.hidden])).toEqual(o.json.editors.map((e) => [e.name, e.site === 'encoder' ? VISION.hidden : LM.hidden]));
    expect(o.json.source).toBe('mrt');
    const mrt = { formula: 'mrt', activation: 'identity', decode: false };
    // intervention_len = 6; the prefix is the first text after the image (MRT's offset past the image tokens)
    const prefix = { kind: 'prefix', n: 6, afterImage: true }, suffix = { kind: 'suffix', n: 6, excludeLast: true };
    expect(o.json.editors).toEqual([
      { name: 'vision.1', site: 'encoder', layer: 1, positions: { kind: 'all' }, rank: VISION.rank, ...mrt },
      { name: 'vision.2', site: 'encoder', layer: 2, positions: { kind: 'all' }, rank: VISION.rank, ...mrt },
      { name: 'projector', site: 'projector', positions: { kind: 'all' }, rank: PROJ.rank, ...mrt },
      ...[0, 1, 2].flatMap((l) => [
        { name: `prefix.${l}`, site: 'block', layer: l, positions: prefix, rank: LM.rank, ...mrt },
        { name: `suffix.${l}`, site: 'block', layer: l, positions: suffix, rank: LM.rank, ...mrt },
      ]),
    ]);
    const modules: [string, string][] = [
      ['vision.1', `${VISION_RT}.1`], ['vision.2', `${VISION_RT}.2`], ['projector', 'model.mm_rt'],
      ...[0, 1, 2].flatMap((l): [string, string][] => [[`prefix.${l}`, `model.prefix_lm_rt.${l}`], [`suffix.${l}`, `model.suffix_lm_rt.${l}`]]),
    ];
    for (const [name, mod] of modules) {
      const t = truth[mod];
      const R = await o.get(`${name}.R`), W = await o.get(`${name}.W`), b = await o.get(`${name}.b`);
      expect([R.shape, W.shape, b.shape]).toEqual([[t.r, t.d], [t.r, t.d], [t.r]]);
      expectNear(R.data, mrtR(t), 1e-6, `${name}.R`);
      expect(rowDeviation(R.data, t.r, t.d)).toBeLessThan(1e-5);
      expectEqual(W.data, bf16(t.W), `${name}.W`); // learned_source is bf16 in MRT
      expectEqual(b.data, bf16(t.b), `${name}.b`);
    }

    // flags: other prefix/suffix lengths, LM editors only
    const out2 = path.join(dir, 'out2');
    ok(py([CONVERT, 'mrt', bin, out2, '--positions', 'f4+l3', '--sites', 'block']));
    const o2 = await readOut(out2);
    expect(o2.json.editors.map((e) => [e.name, e.positions])).toEqual([0, 1, 2].flatMap((l) => [
      [`prefix.${l}`, { kind: 'prefix', n: 4, afterImage: true }], [`suffix.${l}`, { kind: 'suffix', n: 3, excludeLast: true }]]));
    expectEqual((await o2.get('suffix.1.R')).data, (await o.get('suffix.1.R')).data, 'the same R');

    if (HAVE_TORCH) {
      // where torch is installed, torch.load reads the same file to the same editors
      const out3 = path.join(dir, 'out3');
      ok(py([CONVERT, 'mrt', bin, out3], { MAMBAKIT_NO_TORCH: undefined }));
      expect(fs.readFileSync(path.join(out3, 'editors.safetensors'))).toEqual(fs.readFileSync(path.join(out, 'editors.safetensors')));
    }
  });

  test('a flat .safetensors of the same parameters converts too; --bf16 rounds every tensor', async () => {
    // 4096 wide (a 7B LM's width): BF16 rounding leaves R's rows orthonormal to ~2e-4, inside the format's 1e-3
    const t = { d: 4096, r: 4, rotate: uniform(4096 * 4), W: nonzero(4 * 4096), b: nonzero(4) };
    const file = path.join(dir, 'rt_modules.safetensors');
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const side of ['prefix', 'suffix']) {
      tensors[`model.${side}_lm_rt.0.rotate_layer.weight`] = { dtype: 'F32', shape: [t.d, t.r], data: t.rotate };
      tensors[`model.${side}_lm_rt.0.learned_source.weight`] = { dtype: 'F32', shape: [t.r, t.d], data: t.W };
      tensors[`model.${side}_lm_rt.0.learned_source.bias`] = { dtype: 'F32', shape: [t.r], data: t.b };
    }
    await writeSafetensors(file, tensors);
    const out = path.join(dir, 'out');
    ok(py([CONVERT, 'mrt', file, out]));
    const o = await readOut(out);
    expect(o.json.model).toEqual({ hidden_size: t.d, num_layers: 1 });
    expect(o.json.editors.map((e) => e.name)).toEqual(['prefix.0', 'suffix.0']);
    const R = await o.get('suffix.0.R');
    expectNear(R.data, mrtR(t), 1e-6, 'R');
    expectEqual((await o.get('suffix.0.W')).data, t.W, 'W');

    const outB = path.join(dir, 'out-bf16');
    ok(py([CONVERT, 'mrt', file, outB, '--bf16']));
    const ob = await readOut(outB);
    for (const s of ['R', 'W', 'b']) expect((await ob.get(`suffix.0.${s}`)).dtype).toBe('BF16');
    const Rb = await ob.get('suffix.0.R');
    expectEqual(Rb.data, bf16(R.data), 'BF16 R = the F32 R rounded');
    expect(rowDeviation(Rb.data, t.r, t.d)).toBeLessThanOrEqual(1e-3);
    expectEqual((await ob.get('suffix.0.W')).data, bf16(t.W), 'BF16 W');
    // a row that BF16 cannot keep unit-length: 0.998046875 is halfway between two BF16 values and rounds to 1
    const tiny = path.join(dir, 'tiny.safetensors');
    await writeSafetensors(tiny, {
      'model.mm_rt.rotate_layer.weight': { dtype: 'F32', shape: [2, 1], data: Float32Array.of(0.998046875, Math.sqrt(1 - 0.998046875 ** 2)) },
      'model.mm_rt.learned_source.weight': { dtype: 'F32', shape: [1, 2], data: nonzero(2) },
      'model.mm_rt.learned_source.bias': { dtype: 'F32', shape: [1], data: nonzero(1) },
    });
    ok(py([CONVERT, 'mrt', tiny, path.join(dir, 'tiny-f32')]));
    refused(py([CONVERT, 'mrt', tiny, path.join(dir, 'tiny-bf16'), '--bf16']), tiny, /R rounded to BF16 is no longer orthonormal/);
  });

  test('refusals: a pickle naming a disallowed global, a missing file, an unknown module, a shape mismatch', async () => {
    const out = path.join(dir, 'out');
    const evil = path.join(dir, 'evil.bin');
    const marker = path.join(dir, 'PWNED');
    ok(py([WRITER, 'evil', evil, marker]));
    refused(py([CONVERT, 'mrt', evil, out]), `${evil}: refused`, /posix\.system|os\.system/, /not allowed/);
    expect(fs.existsSync(marker)).toBe(false);
    refused(py([CONVERT, 'mrt', path.join(dir, 'empty-dir-that-is-not-here'), out]), /not found/);
    fs.mkdirSync(path.join(dir, 'empty'));
    refused(py([CONVERT, 'mrt', path.join(dir, 'empty'), out]), `${path.join(dir, 'empty', 'rt_modules.bin')}: not found`);

    const bad = path.join(dir, 'bad.safetensors');
    await writeSafetensors(bad, {
      'model.other_rt.rotate_layer.weight': { dtype: 'F32', shape: [8, 2], data: uniform(16) },
      'model.other_rt.learned_source.weight': { dtype: 'F32', shape: [2, 8], data: uniform(16) },
      'model.other_rt.learned_source.bias': { dtype: 'F32', shape: [2], data: uniform(2) },
    });
    refused(py([CONVERT, 'mrt', bad, out]), bad, /module 'model.other_rt' is none of MRT's editors/);
    const mism = path.join(dir, 'mismatch.safetensors');
    await writeSafetensors(mism, {
      'model.mm_rt.rotate_layer.weight': { dtype: 'F32', shape: [8, 2], data: uniform(16) },
      'model.mm_rt.learned_source.weight': { dtype: 'F32', shape: [3, 8], data: uniform(24) },
      'model.mm_rt.learned_source.bias': { dtype: 'F32', shape: [3], data: uniform(3) },
    });
    refused(py([CONVERT, 'mrt', mism, out]), mism, /shape mismatch/);
    const truth = mrtTruth();
    const bin = writeFixture('mrt', path.join(dir, 'rt_modules.bin'), mrtSpec(truth));
    refused(py([CONVERT, 'mrt', bin, out, '--sites', 'encoder']), /pass --hidden/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
