// Dense Mamba end to end: random HF-layout checkpoints on disk → loadModel → logits, against a
// float64 reference; forward = prefill + step; bf16/f16 within their tolerance of f32; bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambaLM, MambakitError, Tensor, loadClassifier, loadLanguageModel, loadModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { MambaShape, Weights, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt } from '../helpers/random';

const SHAPES: [string, MambaShape][] = [
  ['default layout (R auto, K 4, tied)', { D: 40, L: 2, V: 97, N: 16, expand: 2, K: 4 }],
  ['R 5, K 3, biases, untied head, N 7', { D: 36, L: 3, V: 50, N: 7, expand: 2, K: 3, R: 5, useBias: true, tied: false }],
  ['K 2, no conv bias, expand 3, sharded', { D: 24, L: 2, V: 61, N: 5, expand: 3, K: 2, useConvBias: false }],
];

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-model-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function checkpoint(name: string, s: MambaShape, opts: { shardBytes?: number } = {}): Promise<{ dir: string; w: Weights }> {
  const dir = path.join(tmp, name.replace(/\W+/g, '-'));
  const w = randomMambaWeights(s);
  await writeMambaCheckpoint(dir, s, w, opts);
  return { dir, w };
}

const rows = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;

describe.each(DEVICES)('Mamba on %s', (device) => {
  test.each(SHAPES)('%s: forward equals the float64 reference and the step-by-step logits', async (name, s) => {
    const { dir, w } = await checkpoint(`${device}-${name}`, s, name.includes('sharded') ? { shardBytes: 20000 } : {});
    const model = await loadLanguageModel(dir, { device });
    const T = 11;
    const seqs = [Array.from(randInt(T, s.V)), Array.from(randInt(T, s.V))];
    const logits = await model.forward(seqs);
    expect(logits.shape).toEqual([2, T, s.V]);
    const all = await rows(logits);
    for (let b = 0; b < 2; ++b) {
      const ref = mambaRef(s, w, seqs[b]);
      const flat = new Float64Array(T * s.V);
      ref.forEach((r, t) => flat.set(r, t * s.V));
      expectClose(all.subarray(b * T * s.V, (b + 1) * T * s.V), flat, 1e-4, `${name} forward row ${b}`);
    }
    // prefill the first 4 tokens, then step the rest one at a time: the same logits
    const state = model.newState(2);
    const last = await model.prefill(seqs.map((q) => q.slice(0, 4)), state);
    expect(last.shape).toEqual([2, s.V]);
    const pick = (t: number) => Float32Array.from({ length: 2 * s.V }, (_, i) => all[Math.floor(i / s.V) * T * s.V + t * s.V + (i % s.V)]);
    expectClose(await rows(last), pick(3), 1e-5, 'prefill last logits');
    for (let t = 4; t < T; ++t) {
      const step = await model.step(seqs.map((q) => q[t]), state);
      expectClose(await rows(step), pick(t), 1e-5, `step ${t}`);
    }
    state.dispose();
    model.dispose();
  });

  test('long prompt (T 300) through several scan chunks equals step-by-step decode', async () => {
    const s: MambaShape = { D: 32, L: 2, V: 40, N: 16, expand: 2, K: 4 };
    const { dir } = await checkpoint(`${device}-long`, s);
    const model = await loadLanguageModel(dir, { device });
    const seq = Array.from(randInt(300, s.V));
    const state = model.newState(1);
    const pre = await rows(await model.prefill([seq.slice(0, 299)], state));
    const next = await rows(await model.step([seq[299]], state));
    const full = await rows(await model.forward([seq]));
    expectClose(pre, full.subarray(298 * s.V, 299 * s.V), 1e-4, 'prefill 299');
    expectClose(next, full.subarray(299 * s.V), 1e-4, 'step 300');
  });

  test('step with slots advances only the named sequences, in any order', async () => {
    const s = SHAPES[0][1];
    const { dir } = await checkpoint(`${device}-slots`, s);
    const model = await loadLanguageModel(dir, { device });
    const seqs = [0, 1, 2].map(() => Array.from(randInt(6, s.V)));
    const full = await Promise.all(seqs.map(async (q) => rows(await model.forward([q]))));
    const state = model.newState(3);
    await model.prefill(seqs.map((q) => q.slice(0, 3)), state);
    // step sequences 2 and 0 (in that order) twice, then sequence 1 alone three times
    for (let t = 3; t < 5; ++t) {
      const out = await rows(await model.step([seqs[2][t], seqs[0][t]], state, { slots: [2, 0] }));
      expectClose(out.subarray(0, s.V), full[2].subarray(t * s.V, (t + 1) * s.V), 1e-5, `slot 2 t=${t}`);
      expectClose(out.subarray(s.V), full[0].subarray(t * s.V, (t + 1) * s.V), 1e-5, `slot 0 t=${t}`);
    }
    for (let t = 3; t < 6; ++t) {
      const out = await rows(await model.step([seqs[1][t]], state, { slots: [1] }));
      expectClose(out, full[1].subarray(t * s.V, (t + 1) * s.V), 1e-5, `slot 1 t=${t}`);
    }
    await expect(model.step([1, 2], state, { slots: [0, 0] })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(model.step([1], state, { slots: [3] })).rejects.toMatchObject({ code: 'E_ARG' });
  });

  test.each(['bf16', 'f16'] as const)('%s weights stay within 2e-2 of the f32 model', async (dtype) => {
    const s = SHAPES[0][1];
    const { dir } = await checkpoint(`${device}-${dtype}`, s);
    const seq = [Array.from(randInt(9, s.V))];
    const f32 = await rows(await (await loadLanguageModel(dir, { device })).forward(seq));
    const half = await loadLanguageModel(dir, { device, dtype });
    expect(half.dtype).toBe(dtype);
    expectClose(await rows(await half.forward(seq)), f32, 2e-2, `${dtype} model`);
  });
});

describe('Mamba bad input', () => {
  const s: MambaShape = { D: 16, L: 1, V: 20, N: 4, expand: 2, K: 4 };
  let model: MambaLM;
  let dir: string;
  beforeAll(async () => {
    ({ dir } = await checkpoint('bad-input', s));
    model = await loadLanguageModel(dir);
  });
  const code = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
    try {
      await (typeof p === 'function' ? p() : p);
    } catch (e) {
      expect(e).toBeInstanceOf(MambakitError);
      return `${(e as MambakitError).code}: ${(e as MambakitError).message}`;
    }
    return 'no error';
  };

  test('token id ≥ vocab, negative, non-integer; empty prompt; ragged rows', async () => {
    expect(await code(model.forward([[1, 20]]))).toMatch(/^E_ARG: .*token id 20 at \[0, 1\] is outside \[0, 20\)/);
    expect(await code(model.forward([[-1]]))).toMatch(/^E_ARG/);
    expect(await code(model.forward([[1.5]]))).toMatch(/^E_ARG/);
    expect(await code(model.forward([[]]))).toMatch(/^E_ARG: .*empty prompt/);
    expect(await code(model.forward([]))).toMatch(/^E_ARG: .*empty prompt/);
    expect(await code(model.forward([[1, 2], [3]]))).toMatch(/^E_SHAPE/);
  });

  test('state from another model or of another batch size', async () => {
    const other = await checkpoint('other', { ...s, D: 24 });
    const m2 = await loadLanguageModel(other.dir);
    expect(await code(model.step([1], m2.newState(1)))).toMatch(/^E_SHAPE: .*state .* is not from this model/);
    expect(await code(model.step([1, 2], model.newState(3)))).toMatch(/^E_SHAPE: .*state holds 3 sequences, tokens have batch 2/);
    const st = model.newState(1);
    st.dispose();
    expect(await code(model.step([1], st))).toMatch(/^E_ARG: .*disposed/);
    expect(() => model.newState(0)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
  });

  test('zeroSlot resets one sequence of a state; E_ARG outside [0, batch)', async () => {
    // seen through the model: a zeroed slot steps like a fresh state, the other slot keeps its history
    const st = model.newState(2), fresh = model.newState(2), kept = model.newState(2);
    for (const s of [st, kept]) (await model.prefill([[1, 2, 3], [4, 5, 6]], s)).dispose();
    await st.zeroSlot(0);
    const got = await (await model.step([7, 8], st)).data();
    const zero = await (await model.step([7, 8], fresh)).data();
    const hist = await (await model.step([7, 8], kept)).data();
    const V = got.length / 2;
    expect(Array.from(got.subarray(0, V))).toEqual(Array.from(zero.subarray(0, V)));
    expect(Array.from(got.subarray(V))).toEqual(Array.from(hist.subarray(V)));
    expect(Array.from(got.subarray(0, V))).not.toEqual(Array.from(hist.subarray(0, V))); // the history mattered
    for (const slot of [-1, 2, 0.5, NaN]) expect(await code(st.zeroSlot(slot))).toMatch(/^E_ARG: zeroSlot: slot .* is outside \[0, 2\)/);
    [st, fresh, kept].forEach((s) => s.dispose());
  });

  test('loadLanguageModel / loadClassifier / loadModel({ kind }) refuse the other kind before reading weights', async () => {
    const only = (name: string, cfg: object): string => {
      const d = path.join(tmp, name);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg)); // no weights: they must not be looked at
      return d;
    };
    const clf = only('classifier-config-only', { model_type: 'mambaout', depths: [1, 1, 1, 1], dims: [8, 16, 24, 32], num_classes: 10 });
    const lm = only('mamba-config-only', JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')));
    expect(await code(loadLanguageModel(clf))).toBe(`E_ARG: ${clf}: model_type "mambaout" is a MambaOutClassifier, not a language model (use loadClassifier or \`mambakit classify\` for image classifiers)`);
    expect(await code(loadModel(clf, { kind: 'language' }))).toMatch(/^E_ARG: .*MambaOutClassifier, not a language model/);
    expect(await code(loadClassifier(lm))).toBe(`E_ARG: ${lm}: model_type "mamba" is a MambaLM, not an image classifier (use loadLanguageModel or \`mambakit generate\` for language models)`);
    expect(await code(loadModel(lm, { kind: 'classifier' }))).toMatch(/^E_ARG: .*"mamba" is a MambaLM, not an image classifier/);
    expect(await code(loadModel(lm, { kind: 'image' as 'classifier' }))).toMatch(/^E_ARG: loadModel: kind must be 'language', 'classifier', 'diffusion' or 'vlm', got "image"/);
    // without weights, the matching kind gets as far as the checkpoint
    expect(await code(loadLanguageModel(lm))).toMatch(/^E_FORMAT/);
    const same = await loadModel(dir, { kind: 'language' });
    expect(same.kind).toBe('language');
    expect(same.modalityNames).toBeNull();
    same.dispose();
  });

  test('missing or misshapen tensor, unknown model_type, missing config', async () => {
    const w = randomMambaWeights(s);
    const missing = { ...w };
    delete missing['backbone.layers.0.mixer.D'];
    await writeMambaCheckpoint(path.join(tmp, 'missing'), s, missing);
    expect(await code(loadModel(path.join(tmp, 'missing')))).toMatch(/^E_FORMAT: .*'backbone.layers.0.mixer.D' is missing/);
    const bad = path.join(tmp, 'misshapen');
    await writeMambaCheckpoint(bad, { ...s, N: 5 }, randomMambaWeights({ ...s, N: 5 }));
    fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) }));
    expect(await code(loadModel(bad))).toMatch(/^E_FORMAT: .*'backbone.layers.0.mixer.x_proj.weight' has shape \[11, 32\], expected \[9, 32\]/);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const unk = path.join(tmp, 'unknown-type');
    fs.mkdirSync(unk);
    fs.writeFileSync(path.join(unk, 'config.json'), JSON.stringify({ ...cfg, model_type: 'jamba' }));
    expect(await code(loadModel(unk))).toMatch(/^E_FORMAT: .*unknown model_type "jamba"/);
    expect(await code(loadModel(path.join(tmp, 'nowhere')))).toMatch(/^E_FORMAT: .*config/);
  });
});
