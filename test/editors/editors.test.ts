// Representation editors on a frozen language model: editor sets read from disk or attached in code,
// chosen per call and per request; logits against the float64 reference (test/helpers/mamba-ref.ts with
// the float64 edit of test/helpers/editor-ref.ts at the block outputs), prefill + step = forward,
// identity editors change nothing bit for bit, mixed-tenant batches give each request its own result,
// detach while running, and every refusal as a coded error.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Editor, MambaLM, MambakitError, loadLanguageModel, readEditors, writeEditors } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { editVector, editorSet, gramSchmidtRows, randomEditor } from '../helpers/editor-ref';
import { MambaShape, Weights, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt, uniform } from '../helpers/random';
import { orthonormalRows, rowDeviation } from '../../lib/editors/orthonormal';

const S: MambaShape = { D: 24, L: 3, V: 41, N: 8, expand: 2, K: 4, moe: { layerTypes: ['mamba', 'moe', 'mamba'], experts: 4, topK: 2, F: 16, act: 'silu' } };
const D = S.D;

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-editors-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Which positions of a T-token prompt an editor edits at prefill (the documented rules, written out). */
function refPositions(e: Editor, T: number): number[] {
  const p = e.positions;
  if (p.kind === 'all') return [...Array(T).keys()];
  if (p.kind === 'prefix') return [...Array(Math.min(p.n, T)).keys()];
  if (p.kind === 'suffix') {
    const end = p.excludeLast ? T - 1 : T;
    return [...Array(T).keys()].filter((t) => t >= end - p.n && t < end);
  }
  if (p.kind === 'list') return [...p.positions];
  return [];
}

/** The float64 logits [T·V] of one sequence with `editors` applied at their layers and positions. */
function refLogits(w: Weights, tokens: number[], editors: readonly Editor[]): Float64Array {
  const at = editors.map((e) => refPositions(e, tokens.length));
  const rows = mambaRef(S, w, tokens, 1e-5, undefined, (l, t, h) => {
    editors.forEach((e, i) => { if (e.layer === l && at[i].includes(t)) editVector(h, e); });
  });
  return Float64Array.from(rows.flatMap((r) => Array.from(r)));
}

// Two tenants: A (read from disk: both formulas, several activations and positions) and B (attached in
// code: an editor that also edits decoded tokens).
const A = [
  randomEditor({ name: 'l0.prefix', layer: 0, positions: { kind: 'prefix', n: 2 }, rank: 4, formula: 'pyreft', activation: 'relu' }, D),
  randomEditor({ name: 'l2.suffix', layer: 2, positions: { kind: 'suffix', n: 2, excludeLast: true }, rank: 3, formula: 'mrt', activation: 'gelu' }, D),
  randomEditor({ name: 'l1.all', layer: 1, positions: { kind: 'all' }, rank: 1, formula: 'pyreft', activation: 'identity' }, D),
  // same group as l0.prefix (layer 0, pyreft, relu), overlapping positions: a second pass
  randomEditor({ name: 'l0.list', layer: 0, positions: { kind: 'list', positions: [1, 3] }, rank: 2, formula: 'pyreft', activation: 'relu' }, D),
];
const B = [
  randomEditor({ name: 'l1.prefix', layer: 1, positions: { kind: 'prefix', n: 3 }, rank: 2, formula: 'mrt', activation: 'tanh' }, D),
  randomEditor({ name: 'l2.decode', layer: 2, positions: { kind: 'all' }, rank: 4, formula: 'pyreft', activation: 'silu', decode: true }, D),
];

describe.each(DEVICES)('editors on %s', (device) => {
  let w: Weights, model: MambaLM;
  beforeAll(async () => {
    const dir = path.join(tmp, `m-${device}`);
    w = randomMambaWeights(S);
    await writeMambaCheckpoint(dir, S, w);
    model = await loadLanguageModel(dir, { device });
    await writeEditors(path.join(tmp, `A-${device}`), editorSet(D, A));
    await model.loadEditors(path.join(tmp, `A-${device}`), 'A');
    model.attachEditors('B', editorSet(D, B));
  });
  afterAll(() => model?.dispose());

  test('forward with a set per sequence equals the float64 reference; no set leaves a row as it was', async () => {
    expect(model.editorSets).toEqual(['A', 'B']);
    const T = 7;
    const seqs = [Array.from(randInt(T, S.V)), Array.from(randInt(T, S.V)), Array.from(randInt(T, S.V))];
    const got = (await (await model.forward(seqs, { editors: ['A', 'B', null] })).data()) as Float32Array;
    const V = S.V;
    [A, B, []].forEach((set, b) => expectClose(got.subarray(b * T * V, (b + 1) * T * V), refLogits(w, seqs[b], set), 1e-5, `sequence ${b}`));
    const plain = (await (await model.forward([seqs[0]])).data()) as Float32Array;
    expect(Array.from(got.subarray(0, T * V))).not.toEqual(Array.from(plain));
    // the row without a set is what the same batch gives without editors (to f32 rounding, not bit for bit:
    // the edited rows route differently through the MoE block, which changes the experts' GEMM row counts)
    const none = (await (await model.forward(seqs)).data()) as Float32Array;
    expectClose(got.subarray(2 * T * V), none.subarray(2 * T * V), 1e-6, 'the unedited row');
  });

  test('identity editors (W = R, b = 0, identity) leave the logits unchanged bit for bit, both formulas', async () => {
    const id = (f: 'pyreft' | 'mrt', layer: number): Editor => {
      const e = randomEditor({ name: `id.${f}.${layer}`, layer, positions: { kind: 'all' }, rank: 4, formula: f }, D);
      return { ...e, W: Float32Array.from(e.R), b: new Float32Array(4) };
    };
    model.attachEditors('id', editorSet(D, [id('pyreft', 0), id('mrt', 1), id('pyreft', 2)]));
    try {
      const seqs = [Array.from(randInt(9, S.V))];
      const a = (await (await model.forward(seqs, { editors: 'id' })).data()) as Float32Array;
      const b = (await (await model.forward(seqs)).data()) as Float32Array;
      expect(Array.from(a)).toEqual(Array.from(b));
    } finally {
      model.detachEditors('id');
    }
  });

  test('prefill + step = forward: prefill editors on the prompt, decode editors on the new token', async () => {
    // B: l1.prefix (prefill only) and l2.decode (positions all, decode too): a forward over T tokens
    // edits what a prefill of T − 1 tokens and a step of the last one edit
    const T = 6;
    const seq = Array.from(randInt(T, S.V));
    const whole = (await (await model.forward([seq], { editors: 'B' })).data()) as Float32Array;
    const st = model.newState(1);
    (await model.prefill([seq.slice(0, T - 1)], st, { editors: 'B' })).dispose();
    const last = (await (await model.step([seq[T - 1]], st, { editors: ['B'] })).data()) as Float32Array;
    expectClose(last, whole.subarray((T - 1) * S.V), 1e-5, 'step with a decode editor');
    st.dispose();
  });

  test('many tenants in one batch: each request generates exactly what it generates alone', async () => {
    const prompts = [Array.from(randInt(5, S.V)), Array.from(randInt(8, S.V)), Array.from(randInt(6, S.V)), Array.from(randInt(4, S.V))];
    const sets = ['A', 'B', undefined, 'B'] as const;
    const opts = (i: number): { maxTokens: number; temperature: number; seed: number; editors?: string } =>
      ({ maxTokens: 10, temperature: i % 2 ? 0.8 : 0, seed: 11 + i, ...(sets[i] && { editors: sets[i] }) });
    const alone = [];
    for (let i = 0; i < prompts.length; ++i) alone.push((await model.complete(prompts[i], opts(i))).tokens);
    const mixed = await Promise.all(prompts.map((p, i) => model.complete(p, opts(i))));
    expect(mixed.map((r) => r.tokens)).toEqual(alone);
    // and what generate does is the editors' greedy decode: prefill with the set, then steps with it
    // (A: prefill-only editors; B: a decode-time editor too)
    for (const set of ['A', 'B']) {
      const st = model.newState(1);
      let logits = await model.prefill([prompts[0]], st, { editors: set });
      const want: number[] = [];
      for (let i = 0; i < 10; ++i) {
        const row = (await logits.data()) as Float32Array;
        logits.dispose();
        const id = row.indexOf(Math.max(...row));
        want.push(id);
        logits = await model.step([id], st, { editors: [set] });
      }
      logits.dispose();
      st.dispose();
      expect((await model.complete(prompts[0], { maxTokens: 10, temperature: 0, editors: set })).tokens).toEqual(want);
    }
  });

  test('detach while a request runs: it finishes with its set; new requests are refused; re-attach works', async () => {
    model.attachEditors('C', editorSet(D, [B[1]]));
    const p = Array.from(randInt(5, S.V));
    const ref = await model.complete(p, { maxTokens: 12, temperature: 0, editors: 'C' });
    const it = model.generate(p, { maxTokens: 12, temperature: 0, editors: 'C' });
    const first = await it.next();
    model.detachEditors('C');
    expect(model.editorSets).not.toContain('C');
    const tokens = [first.value.tokenId];
    for (let r = await it.next(); !r.done; r = await it.next()) tokens.push(r.value.tokenId);
    expect(tokens).toEqual(ref.tokens);
    await expect(model.complete(p, { editors: 'C' })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining("no editor set named 'C'") });
    model.attachEditors('C', editorSet(D, [B[1]]));
    model.detachEditors('C');
  });

  test('refusals: coded errors naming what is wrong', async () => {
    const code = async (f: () => unknown): Promise<string> => {
      try {
        await f();
        return 'ok';
      } catch (e) {
        return (e as MambakitError).code;
      }
    };
    const seq = [Array.from(randInt(4, S.V))];
    expect(await code(() => model.forward(seq, { editors: 'nope' }))).toBe('E_ARG');
    expect(await code(() => model.forward(seq, { editors: ['A', 'B'] }))).toBe('E_SHAPE');
    expect(await code(() => model.attachEditors('A', editorSet(D, [A[0]])))).toBe('E_ARG'); // name taken
    expect(await code(() => model.attachEditors('w', editorSet(D + 1, [randomEditor({ name: 'x', layer: 0, positions: { kind: 'all' }, rank: 2 }, D + 1)])))).toBe('E_SHAPE');
    expect(await code(() => model.attachEditors('l', editorSet(D, [randomEditor({ name: 'x', layer: 3, positions: { kind: 'all' }, rank: 2 }, D)])))).toBe('E_ARG');
    expect(await code(() => model.attachEditors('p', editorSet(D, [randomEditor({ name: 'x', site: 'projector', layer: 0, positions: { kind: 'all' }, rank: 2 }, D)])))).toBe('E_ARG');
    expect(await code(() => model.attachEditors('i', editorSet(D, [randomEditor({ name: 'x', layer: 0, positions: { kind: 'image' }, rank: 2 }, D)])))).toBe('E_ARG');
    expect(await code(() => model.attachEditors('t', editorSet(D, [randomEditor({ name: 'x', layer: 0, positions: { kind: 'all' }, rank: 2 }, D)], 'llada')))).toBe('E_ARG');
    model.attachEditors('far', editorSet(D, [randomEditor({ name: 'x', layer: 0, positions: { kind: 'list', positions: [9] }, rank: 2 }, D)]));
    expect(await code(() => model.forward(seq, { editors: 'far' }))).toBe('E_ARG'); // position 9 of a 4-token sequence
    model.detachEditors('far');
    expect(await code(() => model.detachEditors('never'))).toBe('E_ARG');
    expect(model.editorSets).toEqual(['A', 'B']);
  });
});

describe('the editors format', () => {
  test('round trip; bf16 files; a non-orthonormal R is refused with its deviation, or orthonormalized when asked', async () => {
    const set = editorSet(D, A);
    const dir = path.join(tmp, 'fmt');
    await writeEditors(dir, set);
    const back = await readEditors(dir);
    expect(back.editors.map(({ name, site, layer, positions, rank, formula, activation, decode }) => ({ name, site, layer, positions, rank, formula, activation, decode })))
      .toEqual(A.map(({ name, site, layer, positions, rank, formula, activation, decode }) => ({ name, site, layer, positions, rank, formula, activation, decode })));
    back.editors.forEach((e, i) => { expect(e.R).toEqual(A[i].R); expect(e.W).toEqual(A[i].W); expect(e.b).toEqual(A[i].b); });
    // bf16: wide enough that rounding keeps R within the tolerance (at width 24 it need not: docs)
    const wide = randomEditor({ name: 'wide', layer: 0, positions: { kind: 'all' }, rank: 4 }, 2048);
    await writeEditors(path.join(tmp, 'fmt16'), editorSet(2048, [wide]), { dtype: 'BF16' });
    const half = await readEditors(path.join(tmp, 'fmt16'));
    expectClose(half.editors[0].W, wide.W, 1e-2, 'bf16 W');
    expect(rowDeviation(half.editors[0].R, 4, 2048)).toBeLessThan(1e-3);

    const raw = { ...A[0], R: uniform(4 * D, -1, 1) };
    await writeEditors(path.join(tmp, 'raw'), editorSet(D, [raw]));
    await expect(readEditors(path.join(tmp, 'raw'))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/not orthonormal \(max \|R Rᵀ − I\| = \d/) });
    const fixed = await readEditors(path.join(tmp, 'raw'), { orthonormalize: true });
    expect(rowDeviation(fixed.editors[0].R, 4, D)).toBeLessThan(1e-6);
    // the QR with the sign fix is the unique orthonormal basis with diag(U) > 0: Gram-Schmidt's
    expectClose(fixed.editors[0].R, gramSchmidtRows(raw.R, 4, D), 1e-5, 'orthonormalized R');
  });

  test('orthonormalRows: nearly dependent rows, a rank equal to the width', () => {
    const C = 6;
    const a = uniform(C * C, -1, 1);
    for (let c = 0; c < C; ++c) a[C + c] = a[c] + 1e-4 * a[C + c]; // row 1 ≈ row 0
    const q = orthonormalRows(a, C, C);
    expect(rowDeviation(q, C, C)).toBeLessThan(1e-6);
    expectClose(q, gramSchmidtRows(Float64Array.from(a), C, C), 1e-3, 'against Gram-Schmidt (ill-conditioned: loose)');
  });

  test('malformed files: coded E_FORMAT errors naming the file and the field', async () => {
    const dir = path.join(tmp, 'bad');
    await writeEditors(dir, editorSet(D, [A[0]]));
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'editors.json'), 'utf8'));
    const write = (j: unknown): void => fs.writeFileSync(path.join(dir, 'editors.json'), JSON.stringify(j));
    const cases: [unknown, RegExp][] = [
      [{ ...json, format: 'x' }, /format must be 'mambakit-editors'/],
      [{ ...json, version: 2 }, /version 2 is not supported/],
      [{ ...json, editors: [{ ...json.editors[0], site: 'head' }] }, /site must be one of/],
      [{ ...json, editors: [{ ...json.editors[0], positions: { kind: 'suffix', n: 0 } }] }, /positions.n must be an integer ≥ 1/],
      [{ ...json, editors: [{ ...json.editors[0], activation: 'swish' }] }, /activation must be one of/],
      [{ ...json, editors: [{ ...json.editors[0], rank: 5 }] }, /tensor 'l0.prefix.R' must be \[5, 24\], got \[4, 24\]/],
      [{ ...json, editors: [{ ...json.editors[0], name: 'other' }] }, /tensor 'other.R' is missing/],
      [{ ...json, editors: [json.editors[0], json.editors[0]] }, /name 'l0.prefix' is repeated/],
    ];
    for (const [j, re] of cases) {
      write(j);
      await expect(readEditors(dir)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(re) });
    }
    write({ ...json, editors: [{ ...json.editors[0], rank: 30 }] });
    await expect(readEditors(dir)).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringContaining('rank 30 exceeds the hidden size 24') });
  });
});
