// Edit points: residual-stream edits given to a call as data (activation addition after block i at
// chosen rows), against the float64 reference with the same edit; the same edit in prefill + step
// equals it in one forward; the plan lists its blocks; bad edits are coded errors.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambakitError, Tensor, loadLanguageModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt, uniform } from '../helpers/random';

const S: MambaShape = { D: 24, L: 3, V: 41, N: 8, expand: 2, K: 4, moe: { layerTypes: ['mamba', 'moe', 'mamba'], experts: 4, topK: 2, F: 16, act: 'silu' } };

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-edits-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(DEVICES)('residual-stream edits on %s', (device) => {
  test('add after blocks 0 and 2 at chosen rows equals the float64 reference with the same edit', async () => {
    const dir = path.join(tmp, `m-${device}`);
    const w = randomMambaWeights(S);
    await writeMambaCheckpoint(dir, S, w);
    const model = await loadLanguageModel(dir, { device });
    expect(model.blocks).toEqual(['mamba', 'moe', 'mamba']);
    const T = 6, D = S.D;
    const seqs = [Array.from(randInt(T, S.V)), Array.from(randInt(T, S.V))];
    const v0 = uniform(D, -0.5, 0.5), v2 = uniform(3 * D, -0.5, 0.5);
    const rows2 = [1, T + 4, T + 5]; // row b·T + t
    const edits = [
      { after: 0, rows: [0, 3, T + 2], add: Tensor.from(v0, [D], { device }) },   // one vector for every row
      { after: 2, rows: rows2, add: Tensor.from(v2, [3, D], { device }) },        // a vector per row
    ];
    const got = (await (await model.forward(seqs, { edits })).data()) as Float32Array;
    const plain = (await (await model.forward(seqs)).data()) as Float32Array;
    for (let b = 0; b < 2; ++b) {
      const ref = mambaRef(S, w, seqs[b], 1e-5, undefined, (l, t, h) => {
        const row = b * T + t;
        if (l === 0 && edits[0].rows.includes(row)) for (let d = 0; d < D; ++d) h[d] += v0[d];
        const j = rows2.indexOf(row);
        if (l === 2 && j >= 0) for (let d = 0; d < D; ++d) h[d] += v2[j * D + d];
      });
      const V = S.V;
      expectClose(got.subarray(b * T * V, (b + 1) * T * V), Float64Array.from(ref.flatMap((r) => Array.from(r))), 1e-5, `row ${b}`);
    }
    expect(Array.from(got)).not.toEqual(Array.from(plain)); // the edits changed something

    // the same edit in a step: forward with an edit at the last position of sequence 1, against a
    // prefill of the first T-1 tokens and a step of the last one with that edit on its batch row
    const vl = Tensor.from(v2.subarray(2 * D), [1, D], { device });
    const whole = (await (await model.forward(seqs, { edits: [{ after: 2, rows: [2 * T - 1], add: vl }] })).data()) as Float32Array;
    const st = model.newState(2);
    (await model.prefill(seqs.map((q) => q.slice(0, T - 1)), st)).dispose();
    const last = (await (await model.step(seqs.map((q) => q[T - 1]), st, { edits: [{ after: 2, rows: [1], add: vl }] })).data()) as Float32Array;
    expectClose(last.subarray(S.V), whole.subarray((2 * T - 1) * S.V, 2 * T * S.V), 1e-5, 'step with an edit');
    expectClose(last.subarray(0, S.V), plain.subarray((T - 1) * S.V, T * S.V), 1e-5, 'row without an edit');
    vl.dispose();
    st.dispose();
    edits.forEach((e) => e.add.dispose());
    model.dispose();
  });

  test('bad edits are coded errors naming the edit', async () => {
    const dir = path.join(tmp, `m-${device}`);
    const model = await loadLanguageModel(dir, { device });
    const v = Tensor.from(uniform(S.D), [S.D], { device });
    const code = (p: Promise<unknown>) => p.then(() => 'no error', (e: MambakitError) => `${e.code}: ${e.message}`);
    expect(await code(model.forward([[1, 2]], { edits: [{ after: 3, rows: [0], add: v }] }))).toMatch(/^E_ARG: .*after=3 is not a block index in \[0, 3\)/);
    expect(await code(model.forward([[1, 2]], { edits: [{ after: 0, rows: [2], add: v }] }))).toMatch(/^E_ARG: edit after block 0: row 2 is outside \[0, 2\) or repeated/);
    expect(await code(model.forward([[1, 2]], { edits: [{ after: 0, rows: [1, 1], add: v }] }))).toMatch(/^E_ARG: .*row 1 .*repeated/);
    const wrong = Tensor.from(uniform(2 * S.D), [2, S.D], { device });
    expect(await code(model.forward([[1, 2]], { edits: [{ after: 1, rows: [0], add: wrong }] }))).toMatch(/^E_SHAPE: edit after block 1: values must be f32 \[24\] or \[n=1, 24\]/);
    [v, wrong].forEach((t) => t.dispose());
    model.dispose();
  });
});
