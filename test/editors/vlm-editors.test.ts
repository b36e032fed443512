// MRT's three sites on the vision-language model: editors after vision-encoder blocks (every position of
// the feature map there), on the projector's output (the image tokens), and after language-model layers on
// the first text tokens after the image (MRT's prefix) and the suffix before the last prompt token; logits
// against the float64 composition (test/helpers/vlm-ckpt.ts) with the float64 edits, generation through
// the scheduler alone and batched, and the site checks.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Editor, MambaVLM, Tensor, loadModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { editVector, editorSet, randomEditor } from '../helpers/editor-ref';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt, uniform } from '../helpers/random';
import { VlmShape, VlmWeights, imageTokensRef, randomVlmWeights, vlmRef, writeVlmCheckpoint } from '../helpers/vlm-ckpt';

const S: VlmShape = {
  vision: { depths: [1, 2], dims: [8, 12], numClasses: 5 }, projector: 'mlp2x_gelu', imageTokenId: 99, imageSize: 32,
  text: { D: 32, L: 2, V: 100, N: 6, expand: 2, K: 4 },
};
const D = S.text.D;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-vlm-editors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// encoder blocks: 0 stem (8 ch), 1 gated (8), 2 downsample (12), 3, 4 gated (12)
const EDITORS: Editor[] = [
  randomEditor({ name: 'enc1', site: 'encoder', layer: 1, positions: { kind: 'all' }, rank: 2, formula: 'mrt' }, 8),
  randomEditor({ name: 'enc4', site: 'encoder', layer: 4, positions: { kind: 'all' }, rank: 3, formula: 'mrt', activation: 'relu' }, 12),
  randomEditor({ name: 'proj', site: 'projector', layer: 0, positions: { kind: 'all' }, rank: 4, formula: 'mrt' }, D),
  randomEditor({ name: 'lm0.prefix', layer: 0, positions: { kind: 'prefix', n: 2, afterImage: true }, rank: 4, formula: 'mrt' }, D),
  randomEditor({ name: 'lm1.suffix', layer: 1, positions: { kind: 'suffix', n: 2, excludeLast: true }, rank: 4, formula: 'mrt', activation: 'tanh' }, D),
];

/** Logits [T·V] in float64 of text with the image inserted at `start`, every editor applied where it edits. */
function editedRef(w: VlmWeights, px: Float32Array, text: number[], start: number): Float64Array {
  const img = imageTokensRef(S, w, px, S.imageSize, S.imageSize, (block, x, rows, C) => {
    for (const e of EDITORS) if (e.site === 'encoder' && e.layer === block)
      for (let r = 0; r < rows; ++r) editVector(x.subarray(r * C, (r + 1) * C), e);
  });
  for (const h of img) editVector(h, EDITORS[2]);
  const tokens = [...text.slice(0, start), ...img, ...text.slice(start)];
  const T = tokens.length, end = start + img.length;
  const rows = mambaRef(S.text, w.text, tokens, 1e-5, undefined, (l, t, h) => {
    if (l === 0 && t >= end && t < end + 2) editVector(h, EDITORS[3]);        // 2 after the image
    if (l === 1 && t >= T - 3 && t < T - 1) editVector(h, EDITORS[4]);        // 2 before the last
  });
  return Float64Array.from(rows.flatMap((r) => Array.from(r)));
}

describe.each(DEVICES)('VLM editors on %s', (device) => {
  let vlm: MambaVLM, w: VlmWeights;
  beforeAll(async () => {
    w = randomVlmWeights(S);
    await writeVlmCheckpoint(path.join(tmp, device), S, w);
    vlm = (await loadModel(path.join(tmp, device), { device })) as MambaVLM;
    vlm.attachEditors('mrt', editorSet(D, EDITORS, 'mamba_vlm'));
  });
  afterAll(() => vlm?.dispose());

  test('encoder, projector and LM editors: logits = the float64 composition with the same edits', async () => {
    expect(vlm.encoderBlocks).toEqual(['stem', 'gated_cnn', 'downsample', 'gated_cnn', 'gated_cnn']);
    const px = uniform(S.imageSize * S.imageSize * 3, -2, 2);
    const text = Array.from(randInt(7, 98));
    const prompt = [...text.slice(0, 2), 99, ...text.slice(2)]; // the image after two text tokens
    const image = Tensor.from(px, [1, S.imageSize, S.imageSize, 3], { device });
    const got = (await (await vlm.forward({ image, prompt }, { editors: 'mrt' })).data()) as Float32Array;
    const edited = editedRef(w, px, text, 2);
    expectClose(got, edited, 1e-4, 'edited VLM logits');
    // each site's edits matter: dropping any one moves the float64 logits far beyond the tolerance
    const plain = Float64Array.from(vlmRef(S, w, px, S.imageSize, S.imageSize, text, 2).flatMap((r) => Array.from(r)));
    expect(Math.max(...Array.from(plain, (v, i) => Math.abs(v - edited[i])))).toBeGreaterThan(1e-2);
    // generation: the same set, alone and batched with a request without it
    const alone = await vlm.complete({ image, prompt }, { maxTokens: 6, temperature: 0, editors: 'mrt' });
    const [a, b] = await Promise.all([
      vlm.complete({ image, prompt }, { maxTokens: 6, temperature: 0, editors: 'mrt' }),
      vlm.complete({ image, prompt }, { maxTokens: 6, temperature: 0 }),
    ]);
    expect(a.tokens).toEqual(alone.tokens);
    // greedy from the edited prefill logits: the first token is the argmax of the reference's last row
    const ref = editedRef(w, px, text, 2), V = S.text.V, last = ref.subarray(ref.length - V);
    expect(alone.tokens[0]).toBe(last.indexOf(Math.max(...last)));
    expect(b.tokens.length).toBe(6);
    image.dispose();
  });

  test('sites are checked against the VLM: encoder widths per block, layers, the projector width', () => {
    const bad = (e: Editor): void => vlm.attachEditors('bad', editorSet(D, [e], 'mamba_vlm'));
    expect(() => bad(randomEditor({ name: 'x', site: 'encoder', layer: 3, positions: { kind: 'all' }, rank: 2 }, 8)))
      .toThrow(expect.objectContaining({ code: 'E_SHAPE', message: expect.stringContaining('after layer 3 is 12 wide') }));
    expect(() => bad(randomEditor({ name: 'x', site: 'encoder', layer: 5, positions: { kind: 'all' }, rank: 2 }, 12)))
      .toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => bad(randomEditor({ name: 'x', site: 'projector', layer: 0, positions: { kind: 'all' }, rank: 2 }, 12)))
      .toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(vlm.editorSets).toEqual(['mrt']);
  });
});
