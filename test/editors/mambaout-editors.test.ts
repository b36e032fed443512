// Editor sets on the MambaOut classifier: an editor of block l edits every position of that block's output
// (rows b·h·w + y·w + x), as wide as its stage; logits and classify() against the float64 reference with the
// same edits; widths checked per block.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Editor, MambaOutClassifier, Tensor, loadClassifier } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { editVector, editorSet, randomEditor } from '../helpers/editor-ref';
import { MambaOutShape, randomMambaOutWeights, writeMambaOutCheckpoint } from '../helpers/mambaout-ckpt';
import { mambaoutRef } from '../helpers/mambaout-ref';
import { uniform } from '../helpers/random';

const S: MambaOutShape = { depths: [1, 2], dims: [8, 12], numClasses: 7 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-mambaout-editors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// blocks: 0 stem (8), 1 gated (8), 2 downsample (12), 3, 4 gated (12)
const EDITORS: Editor[] = [
  randomEditor({ name: 'stem', layer: 0, positions: { kind: 'all' }, rank: 2, formula: 'pyreft', activation: 'gelu' }, 8),
  randomEditor({ name: 'down', layer: 2, positions: { kind: 'all' }, rank: 3, formula: 'mrt' }, 12),
  randomEditor({ name: 'last', layer: 4, positions: { kind: 'list', positions: [0, 3] }, rank: 2, formula: 'mrt', activation: 'silu' }, 12),
];

describe.each(DEVICES)('MambaOut editors on %s', (device) => {
  let model: MambaOutClassifier, w: Record<string, Float32Array>;
  beforeAll(async () => {
    w = randomMambaOutWeights(S);
    await writeMambaOutCheckpoint(path.join(tmp, device), S, w);
    model = await loadClassifier(path.join(tmp, device), { device });
    model.attachEditors('e', editorSet(12, EDITORS, 'mambaout'));
  });
  afterAll(() => model?.dispose());

  test('logits with an editor set = the float64 reference with the same edits, per image of a batch', async () => {
    const B = 2, H = 32, W = 32;
    const px = uniform(B * H * W * 3, -2, 2);
    const pixels = Tensor.from(px, [B, H, W, 3], { device });
    const got = (await (await model.forward(pixels, { editors: 'e' })).data()) as Float32Array;
    const ref = mambaoutRef(w, S, px, B, H, W, (block, x, rows, C) => {
      const hw = rows / B;
      for (const e of EDITORS) {
        if (e.layer !== block) continue;
        for (let r = 0; r < rows; ++r) {
          const p = e.positions;
          if (p.kind === 'all' || (p.kind === 'list' && p.positions.includes(r % hw))) editVector(x.subarray(r * C, (r + 1) * C), e);
        }
      }
    });
    expectClose(got, ref, 1e-5, 'edited MambaOut logits');
    const plain = mambaoutRef(w, S, px, B, H, W);
    expect(Math.max(...Array.from(plain, (v, i) => Math.abs(v - ref[i])))).toBeGreaterThan(1e-2);
    pixels.dispose();
  });

  test('widths per block: an 8-wide editor after a 12-wide block is E_SHAPE', () => {
    expect(() => model.attachEditors('bad', editorSet(12, [randomEditor({ name: 'x', layer: 3, positions: { kind: 'all' }, rank: 2 }, 8)], 'mambaout')))
      .toThrow(expect.objectContaining({ code: 'E_SHAPE', message: expect.stringContaining('after layer 3 is 12 wide') }));
    expect(model.editorSets).toEqual(['e']);
  });
});
