// Representation editors (op 'reft') at the plans' edit points, after every block kind of every family:
// Mamba and MoE blocks (MambaLM, edits option), Mixture-of-Mamba (per-token modalities), MambaOut's stem,
// gated CNN and downsample blocks (stream rows b·H·W + y·W + x) and LLaDA's attention and MLP blocks (the
// native plans directly: those classes take no edits). Each against its float64 reference with the
// editor applied at the block output (test/helpers/reft-ref.ts); W = R, b = 0, identity leaves the output
// bit for bit; prefill + step with an editor equals the forward (on CUDA: a captured decode step, whose
// graph key includes the editor's activation); bad reft edits are coded errors naming the edit.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambaLM, MambakitError, Tensor, loadLanguageModel } from '../../lib';
import type { ReftEdit, ResidualEdit } from '../../lib/models/edits';
import { NativeConfig, NativeEdit, NativeModel, addon } from '../../lib/native';
import { expectedMambaOutTensors } from '../../lib/io/mambaout-config';
import { oihwToHwio } from '../../lib/vision/repack';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual, maxRelError } from '../helpers/compare';
import { LladaShape, randomLladaWeights, refConfigOf } from '../helpers/llada-ckpt';
import { lladaTensorShapes, refForward } from '../helpers/llada-ref';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { MambaOutShape, randomMambaOutWeights } from '../helpers/mambaout-ckpt';
import { mambaoutRef } from '../helpers/mambaout-ref';
import { randInt, uniform } from '../helpers/random';
import { ReftActivation, ReftFormula, randomEditors, randomRows, reftRef } from '../helpers/reft-ref';

type Device = (typeof DEVICES)[number];

/** One reft edit's values (the reference's view) and the options to build its tensors. */
interface Spec {
  after: number; rows: Int32Array; editor: Int32Array; E: number; r: number; C: number;
  wdt: 'f32' | 'bf16'; formula: ReftFormula; activation: ReftActivation;
  R: Float32Array; W: Float32Array; b: Float32Array;
}

function spec(after: number, rows: Int32Array, E: number, r: number, C: number, wdt: Spec['wdt'], formula: ReftFormula, activation: ReftActivation): Spec {
  return { after, rows, editor: randInt(rows.length, E), E, r, C, wdt, formula, activation, ...randomEditors(E, r, C, wdt) };
}

/** W = R, b = 0 (with the identity: no edit at all). */
const identityOf = (s: Spec): Spec => ({ ...s, W: s.R, b: new Float32Array(s.E * s.r), activation: 'identity' });

/** The spec's weights as tensors on `device` (the caller disposes them). */
function tensorsOf(s: Spec, device: Device): { R: Tensor; W: Tensor; b: Tensor } {
  const { E, r, C } = s;
  return {
    R: Tensor.from(s.R, [E, r, C], { device, dtype: s.wdt }), W: Tensor.from(s.W, [E, r, C], { device, dtype: s.wdt }),
    b: Tensor.from(s.b, [E, r], { device }),
  };
}

/** The float64 edits after `block` of stream row `row`, whose value is h (changed in place). */
function editRow(specs: readonly Spec[], block: number, row: number, h: Float64Array): void {
  for (const s of specs) {
    const i = s.rows.indexOf(row);
    if (s.after === block && i >= 0) h.set(reftRef(h, 1, s.C, [0], [s.editor[i]], s.R, s.W, s.b, s.E, s.r, s.formula, s.activation));
  }
}
/** editRow on every row of a stream x [rows, C]. */
const editStream = (specs: readonly Spec[], block: number, x: Float64Array, C: number): void => {
  for (let row = 0; row < x.length / C; ++row) editRow(specs, block, row, x.subarray(row * C, (row + 1) * C));
};

/** A forward of a native plan with the specs as its reft edits. */
async function nativeForward(plan: NativeModel, input: Tensor, specs: readonly Spec[], device: Device): Promise<Float32Array> {
  const owned: Tensor[] = [];
  const edits = specs.map((s): NativeEdit => {
    const w = tensorsOf(s, device);
    const rows = Tensor.from(s.rows, [s.rows.length], { device }), editor = Tensor.from(s.editor, [s.editor.length], { device });
    owned.push(w.R, w.W, w.b, rows, editor);
    return { op: 'reft', after: s.after, rows: rows.handle, editor: editor.handle, R: w.R.handle, W: w.W.handle, b: w.b.handle, formula: s.formula, activation: s.activation };
  });
  try {
    const y = Tensor.fromHandle(await plan.forward({ input: input.handle, mode: 'forward', edits: edits.length ? edits : undefined }));
    const v = (await y.data()) as Float32Array;
    y.dispose();
    return v;
  } finally {
    owned.forEach((t) => t.dispose());
  }
}

/** A native plan of `family` from weights by name (f32 values and shapes) on `device`; weights freed with the plan. */
function nativePlan(family: string, config: NativeConfig, weights: Record<string, [Float32Array, number[]]>, device: Device): { plan: NativeModel; dispose: () => void } {
  const t = Object.fromEntries(Object.entries(weights).map(([k, [v, shape]]) => [k, Tensor.from(v, shape, { device })]));
  const plan = addon.createModel(family, config, Object.fromEntries(Object.entries(t).map(([k, x]) => [k, x.handle])), device);
  return { plan, dispose: () => { plan.dispose(); Object.values(t).forEach((x) => x.dispose()); } };
}

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-reft-edits-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const MOE: MambaShape = { D: 24, L: 3, V: 41, N: 8, expand: 2, K: 4, moe: { layerTypes: ['mamba', 'moe', 'mamba'], experts: 4, topK: 2, F: 16, act: 'gelu' } };
const MOM: MambaShape = { D: 20, L: 2, V: 37, N: 4, expand: 2, K: 3, mom: { M: 2, specific: ['in_proj', 'out_proj'] } };

describe.each(DEVICES)('reft edits in model plans on %s', (device) => {
  // MambaLM edits from specs (their tensors are disposed by the caller through `owned`)
  const lmEdits = (specs: readonly Spec[], owned: Tensor[]): ResidualEdit[] => specs.map((s) => {
    const w = tensorsOf(s, device);
    owned.push(w.R, w.W, w.b);
    return { after: s.after, rows: s.rows, reft: { editor: s.editor, ...w, formula: s.formula, activation: s.activation } };
  });
  const forward = async (model: MambaLM, seqs: number[][], specs: readonly Spec[], modalities?: number[][]): Promise<Float32Array> => {
    const owned: Tensor[] = [];
    try {
      const y = await model.forward(seqs, { edits: lmEdits(specs, owned), modalities });
      const v = (await y.data()) as Float32Array;
      y.dispose();
      return v;
    } finally {
      owned.forEach((t) => t.dispose());
    }
  };

  test('Mamba + MoE blocks: editors after a mamba and a moe block equal the float64 reference; identity editors change nothing; prefill + step = forward', async () => {
    const dir = path.join(tmp, `moe-${device}`);
    const w = randomMambaWeights(MOE);
    await writeMambaCheckpoint(dir, MOE, w);
    const model = (await loadLanguageModel(dir, { device })) as MambaLM;
    expect(model.blocks).toEqual(['mamba', 'moe', 'mamba']);
    const B = 2, T = 6, D = MOE.D, V = MOE.V;
    const seqs = Array.from({ length: B }, () => Array.from(randInt(T, V)));
    const specs = [
      spec(0, randomRows(5, B * T), 3, 4, D, 'f32', 'pyreft', 'gelu'),
      spec(1, randomRows(7, B * T), 1, 8, D, 'bf16', 'mrt', 'tanh'),
      spec(2, randomRows(3, B * T), 2, 1, D, 'f32', 'mrt', 'relu'),
    ];
    const got = await forward(model, seqs, specs);
    const refs = seqs.map((q, b) => mambaRef(MOE, w, q, 1e-5, undefined, (l, t, h) => editRow(specs, l, b * T + t, h)));
    expectClose(got, Float64Array.from(refs.flatMap((r) => r.flatMap((v) => Array.from(v)))), 1e-5, 'mamba + moe editors');

    const plain = (await (await model.forward(seqs)).data()) as Float32Array;
    expect(maxRelError(plain, got)).toBeGreaterThan(1e-3); // the editors change the logits far beyond the tolerance
    expectEqual(await forward(model, seqs, specs.map(identityOf)), plain, 'identity editors');

    // the editor at the last position of sequence 1 after block 2: forward vs prefill(T − 1) + step, twice with
    // the same state and weight buffers but another activation (a captured step must not replay the first graph)
    const s0 = spec(2, Int32Array.from([2 * T - 1]), 2, 4, D, 'f32', 'pyreft', 'identity');
    const w0 = tensorsOf(s0, device);
    const st = model.newState(B);
    for (const activation of ['silu', 'tanh'] as const) {
      const edit = (row: number): ResidualEdit => ({ after: 2, rows: [row], reft: { editor: [1], ...w0, formula: 'pyreft', activation } });
      const whole = (await (await model.forward(seqs, { edits: [edit(2 * T - 1)] })).data()) as Float32Array;
      await st.zeroSlot(0);
      await st.zeroSlot(1);
      (await model.prefill(seqs.map((q) => q.slice(0, T - 1)), st)).dispose();
      const last = (await (await model.step(seqs.map((q) => q[T - 1]), st, { edits: [edit(1)] })).data()) as Float32Array;
      expectClose(last.subarray(V), whole.subarray((2 * T - 1) * V), 1e-5, `step with an editor (${activation})`);
      expectClose(last.subarray(0, V), plain.subarray((T - 1) * V, T * V), 1e-5, 'row without an editor');
    }
    st.dispose();
    Object.values(w0).forEach((t) => t.dispose());
    model.dispose();
  });

  test('Mixture-of-Mamba: editors after both blocks with per-token modalities equal the float64 reference', async () => {
    const dir = path.join(tmp, `mom-${device}`);
    const w = randomMambaWeights(MOM);
    await writeMambaCheckpoint(dir, MOM, w);
    const model = (await loadLanguageModel(dir, { device })) as MambaLM;
    const B = 2, T = 5, D = MOM.D;
    const seqs = Array.from({ length: B }, () => Array.from(randInt(T, MOM.V)));
    const mods = Array.from({ length: B }, () => Array.from(randInt(T, 2)));
    const specs = [spec(0, randomRows(6, B * T), 3, 4, D, 'bf16', 'pyreft', 'silu'), spec(1, randomRows(4, B * T), 1, 2, D, 'f32', 'mrt', 'gelu')];
    const got = await forward(model, seqs, specs, mods);
    const refs = seqs.map((q, b) => mambaRef(MOM, w, q, 1e-5, mods[b], (l, t, h) => editRow(specs, l, b * T + t, h)));
    expectClose(got, Float64Array.from(refs.flatMap((r) => r.flatMap((v) => Array.from(v)))), 1e-5, 'mixture-of-mamba editors');
    const plain = (await (await model.forward(seqs, { modalities: mods })).data()) as Float32Array;
    expect(maxRelError(plain, got)).toBeGreaterThan(1e-3);
    expectEqual(await forward(model, seqs, specs.map(identityOf), mods), plain, 'identity');
    model.dispose();
  });

  test('MambaOut: editors after the stem, a downsample and a gated CNN block (rows b·H·W + y·W + x) equal the float64 reference', async () => {
    const s: MambaOutShape = { depths: [1, 1], dims: [16, 24], numClasses: 11 };
    const w = randomMambaOutWeights(s);
    const weights: Record<string, [Float32Array, number[]]> = {};
    for (const { name, shape } of expectedMambaOutTensors(s)) { // as MambaOutClassifier loads them: convs channels last
      const [O, I, KH, KW] = shape;
      weights[name] = shape.length === 4 ? [oihwToHwio(w[name], O, I, KH, KW), I === 1 ? [KH, KW, O] : [KH, KW, I, O]] : [w[name], shape];
    }
    const { plan, dispose } = nativePlan('mambaout', { dims: s.dims, depths: s.depths, classes: s.numClasses, eps: 1e-6 }, weights, device);
    expect(plan.blocks()).toEqual(['stem', 'gated_cnn', 'downsample', 'gated_cnn']);
    const B = 2, H = 19, W = 13;
    const px = uniform(B * H * W * 3, -2, 2);
    const input = Tensor.from(px, [B, H, W, 3], { device });
    const rows0 = B * 5 * 4, rows2 = B * 3 * 2; // stream rows after the stem (H/4, W/4) and after the downsample
    const specs = [
      spec(0, randomRows(17, rows0), 3, 8, 16, 'f32', 'pyreft', 'gelu'),
      spec(1, randomRows(rows0, rows0), 2, 4, 16, 'bf16', 'mrt', 'silu'),
      spec(2, randomRows(5, rows2), 1, 4, 24, 'f32', 'mrt', 'tanh'),
      spec(3, randomRows(4, rows2), 2, 1, 24, 'f32', 'pyreft', 'relu'),
    ];
    const ref = mambaoutRef(w, s, px, B, H, W, (block, x, _rows, C) => editStream(specs, block, x, C));
    const got = await nativeForward(plan, input, specs, device), plain = await nativeForward(plan, input, [], device);
    expectClose(got, ref, 1e-5, 'mambaout editors');
    expect(maxRelError(plain, got)).toBeGreaterThan(1e-3);
    expectEqual(await nativeForward(plan, input, specs.map(identityOf), device), plain, 'identity');
    input.dispose();
    dispose();
  });

  test('LLaDA: editors after an attention and an MLP block equal the float64 reference; identity editors change nothing', async () => {
    const s: LladaShape = { D: 32, H: 4, KVH: 2, L: 2, F: 40, V: 29, maskId: 28, dtype: 'f32' };
    const w = randomLladaWeights(s);
    const cfg = refConfigOf(s);
    const weights = Object.fromEntries(Object.entries(lladaTensorShapes(cfg)).map(([name, shape]) => [name, [w[name], shape] as [Float32Array, number[]]]));
    const { plan, dispose } = nativePlan('llada', {
      d_model: s.D, n_heads: s.H, n_kv_heads: s.KVH, n_layers: s.L, mlp_hidden: s.F, eps: cfg.eps, rope_theta: cfg.theta, max_positions: 64,
    }, weights, device);
    expect(plan.blocks()).toEqual(['attention', 'mlp', 'attention', 'mlp']);
    const B = 2, T = 7;
    const ids = randInt(B * T, 28);
    const input = Tensor.from(ids, [B, T], { device });
    const specs = [
      spec(0, randomRows(6, B * T), 3, 8, s.D, 'f32', 'mrt', 'gelu'),
      spec(1, randomRows(9, B * T), 2, 4, s.D, 'bf16', 'pyreft', 'tanh'),
      spec(3, randomRows(B * T, B * T), 1, 2, s.D, 'f32', 'pyreft', 'identity'),
    ];
    const ref = refForward(w, cfg, ids, B, T, { after: (block, x) => editStream(specs, block, x, s.D) });
    const got = await nativeForward(plan, input, specs, device), plain = await nativeForward(plan, input, [], device);
    expectClose(got, ref.logits, 1e-5, 'llada editors');
    expect(maxRelError(plain, got)).toBeGreaterThan(1e-3);
    expectEqual(await nativeForward(plan, input, specs.map(identityOf), device), plain, 'identity');
    input.dispose();
    dispose();
  });

  test('bad reft edits are coded errors naming the edit', async () => {
    const dir = path.join(tmp, `moe-${device}`);
    const model = (await loadLanguageModel(dir, { device })) as MambaLM;
    const D = MOE.D;
    const s = spec(1, Int32Array.from([0, 1]), 2, 4, D, 'f32', 'pyreft', 'identity');
    const code = async (o: Partial<Spec>, tweak?: (e: ReftEdit) => void): Promise<string> => {
      const owned: Tensor[] = [];
      const [e] = lmEdits([{ ...s, ...o }], owned) as ReftEdit[];
      tweak?.(e);
      try {
        return await model.forward([[1, 2]], { edits: [e] }).then(() => 'no error', (err: MambakitError) => `${err.code}: ${err.message}`);
      } finally {
        owned.forEach((t) => t.dispose());
      }
    };
    expect(await code({})).toBe('no error');
    expect(await code({ rows: Int32Array.from([0, 2]) })).toMatch(/^E_ARG: edit after block 1: row 2 is outside \[0, 2\) or repeated/);
    expect(await code({ rows: Int32Array.from([1, 1]) })).toMatch(/^E_ARG: edit after block 1: row 1 is outside \[0, 2\) or repeated/);
    expect(await code({ editor: Int32Array.from([0, 2]) })).toMatch(/^E_ARG: edit after block 1: editor index 2 \(of row 1\) is outside \[0, 2\)/);
    expect(await code({ editor: Int32Array.from([0]) })).toMatch(/^E_SHAPE: edit after block 1: editor must be \[n=2\], got i32\[1\]/);
    expect(await code(spec(1, s.rows, 2, 4, D - 1, 'f32', 'pyreft', 'identity'))).toMatch(/^E_SHAPE: edit after block 1: R must be \[E, r, C=24\], got f32\[2, 4, 23\]/);
    expect(await code({}, (e) => { e.reft.W = Tensor.from(s.W, [2, 4, D], { device, dtype: 'bf16' }); }))
      .toMatch(/^E_DTYPE: edit after block 1: W must be f32 \(R's dtype\), got bf16\[2, 4, 24\]/);
    expect(await code({}, (e) => { e.reft.b = Tensor.from(s.b, [4, 2], { device }); }))
      .toMatch(/^E_SHAPE: edit after block 1: b must be \[E=2, r=4\], got f32\[4, 2\]/);
    expect(await code({ after: 3 })).toMatch(/^E_ARG: edit: after=3 is not a block index in \[0, 3\)/);
    expect(await code({ formula: 'loreft' as ReftFormula })).toMatch(/^E_ARG: forward: edits\[0\]\.formula must be 'pyreft' or 'mrt', got 'loreft'/);
    expect(await code({ activation: 'sigmoid' as ReftActivation })).toMatch(/^E_ARG: forward: edits\[0\]\.activation must be 'identity', 'relu', 'gelu', 'silu' or 'tanh', got 'sigmoid'/);
    model.dispose();
  });
});
