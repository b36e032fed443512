// Editors on the LLaDA transformer: an editor of layer l edits the layer's output (after its MLP, plan
// block 2l + 1) at positions counted from the prompt's start, in every forward that holds them: logits
// vs the float64 reference with the same edits, identity editors bit for bit, and sampling token for
// token vs the float64 LLaDA / Fast-dLLM samplers fed the edited forward.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Editor, LladaLM, loadModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { editVector, editorSet, randomEditor } from '../helpers/editor-ref';
import { LladaCheckpoint, LladaShape, writeLladaCheckpoint } from '../helpers/llada-ckpt';
import { RefForward, refForward, refGenerate, refGenerateFast } from '../helpers/llada-ref';
import { randInt } from '../helpers/random';

const SH: LladaShape = { D: 64, H: 4, KVH: 2, L: 2, F: 96, V: 300, maskId: 299, dtype: 'f32' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-llada-editors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const EDITORS: Editor[] = [
  randomEditor({ name: 'l0.prefix', layer: 0, positions: { kind: 'prefix', n: 2 }, rank: 4, formula: 'pyreft', activation: 'relu' }, SH.D),
  randomEditor({ name: 'l1.all', layer: 1, positions: { kind: 'all' }, rank: 2, formula: 'mrt', activation: 'tanh' }, SH.D),
  randomEditor({ name: 'l1.suffix', layer: 1, positions: { kind: 'suffix', n: 2 }, rank: 3, formula: 'pyreft', activation: 'gelu' }, SH.D),
];

/** Absolute positions of a P-token prompt (starting at 0) that `e` edits in a sequence of L positions. */
function editsAt(e: Editor, P: number, L: number, t: number): boolean {
  const p = e.positions;
  if (p.kind === 'all') return t < L;
  if (p.kind === 'prefix') return t < Math.min(p.n, P);
  if (p.kind === 'suffix') return t >= P - p.n && t < P;
  return false;
}

/** The float64 forward with the editors applied after block 2l + 1 to the rows whose absolute position they edit. */
function editedForward(ck: LladaCheckpoint, P: number, L: number): RefForward {
  return (ids, B, T, opts) => {
    const q0 = opts?.queryStart ?? 0;
    return refForward(ck.weights, ck.config, ids, B, T, {
      ...opts,
      after: (block, x) => {
        if (block % 2 === 0) return;
        const layer = (block - 1) / 2;
        for (let r = 0; r < B * T; ++r) {
          const h = x.subarray(r * SH.D, (r + 1) * SH.D);
          for (const e of EDITORS) if (e.layer === layer && editsAt(e, P, L, q0 + (r % T))) editVector(h, e);
        }
      },
    });
  };
}

describe.each(DEVICES)('LLaDA editors on %s', (device) => {
  let ck: LladaCheckpoint, model: LladaLM;
  beforeAll(async () => {
    ck = await writeLladaCheckpoint(path.join(tmp, device), SH);
    model = await loadModel(ck.dir, { device, kind: 'diffusion' });
    model.attachEditors('e', editorSet(SH.D, EDITORS, 'llada'));
  });
  afterAll(() => model?.dispose());

  test('forward logits with editors = the float64 reference; identity editors change nothing bit for bit', async () => {
    const T = 9;
    const ids = Int32Array.from(randInt(2 * T, 299));
    const got = (await (await model.forward([Array.from(ids.subarray(0, T)), Array.from(ids.subarray(T))], { editors: ['e', null] })).data()) as Float32Array;
    const ref = editedForward(ck, T, T)(ids.subarray(0, T), 1, T, {});
    expectClose(got.subarray(0, T * SH.V), ref.logits, 1e-5, 'edited row');
    const plain = refForward(ck.weights, ck.config, ids.subarray(T), 1, T, {});
    expectClose(got.subarray(T * SH.V), plain.logits, 1e-5, 'row without editors');
    // the edits move the logits far beyond the tolerance (the comparison above could not pass unedited)
    const unedited = refForward(ck.weights, ck.config, ids.subarray(0, T), 1, T, {}).logits;
    expect(Math.max(...Array.from(unedited, (v, i) => Math.abs(v - ref.logits[i])))).toBeGreaterThan(1e-2);

    const id = EDITORS.map((e) => ({ ...e, name: `${e.name}.id`, formula: 'pyreft' as const, activation: 'identity' as const, W: Float32Array.from(e.R), b: new Float32Array(e.rank) }));
    model.attachEditors('id', editorSet(SH.D, id));
    const a = (await (await model.forward([Array.from(ids.subarray(0, T))], { editors: 'id' })).data()) as Float32Array;
    const b = (await (await model.forward([Array.from(ids.subarray(0, T))])).data()) as Float32Array;
    expect(Array.from(a)).toEqual(Array.from(b));
    model.detachEditors('id');
  });

  test.each([
    ['no cache', undefined],
    ['dual cache', 'dual' as const],
  ])('sampling with editors = the float64 sampler over the edited forward, token for token: %s', async (_n, cache) => {
    const P = 6, split = { genLength: 8, blockLength: 4, steps: 4 };
    const prompt = Array.from(randInt(P, 299));
    const it = model.diffuse([prompt], { ...split, temperature: 0, editors: 'e', cache });
    let res;
    for (;;) {
      const s = await it.next();
      if (s.done) { res = s.value; break; }
    }
    const fwd = editedForward(ck, P, P + split.genLength);
    const ref = cache
      ? refGenerateFast(fwd, Int32Array.from(prompt), 1, P, { ...split, maskId: 299, cache })
      : refGenerate(fwd, Int32Array.from(prompt), 1, P, { ...split, maskId: 299 });
    expect(Array.from(res.ids)).toEqual(Array.from(ref.x));
    // the text API takes the same option
    const edited = await model.generate(prompt, { ...split, temperature: 0, editors: 'e', cache });
    expect(edited.ids).toEqual(Array.from(ref.x.subarray(P)));
  });

  test('an unknown set is a coded error before anything runs', async () => {
    await expect(model.generate([1, 2, 3], { genLength: 4, editors: 'nope' })).rejects.toMatchObject({ code: 'E_ARG' });
  });
});
