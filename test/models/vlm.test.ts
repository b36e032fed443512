// The mamba_vlm vision-language model end to end: random checkpoints in the documented layout
// (test/helpers/vlm-ckpt.ts) → loadModel → logits against a float64 reference composed of MambaOut up to the
// feature stage, the projector and the Mamba reference on input embeddings with per-token modalities;
// prefill + step = forward; generation alone and batched; the encoder's feature map and its edits; the CLI;
// every coded error of a bad checkpoint, config or input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { MambaVLM, MambakitError, Tensor, loadLanguageModel, loadModel, loadVisionLanguageModel } from '../../lib';
import { cmdGenerate } from '../../lib/cli/generate';
import { preprocessImage } from '../../lib/vision/preprocess';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt, uniform } from '../helpers/random';
import { MERGES } from '../helpers/tokenizer-fixture';
import { VlmShape, VlmWeights, imageTokensRef, randomVlmWeights, vlmRef, writeVlmCheckpoint } from '../helpers/vlm-ckpt';

const VISION = { depths: [1, 2], dims: [8, 12], numClasses: 5 };
const FIXTURE_VOCAB = 256 + MERGES.length + 1; // the byte-level fixture's ids; '<image>' is the next one
const lmBase = { D: 32, L: 2, V: FIXTURE_VOCAB + 3, N: 6, expand: 2, K: 4 };
const IMAGE_ID = FIXTURE_VOCAB; // the fixture tokenizer's '<image>' added token
const SHAPES: [string, VlmShape][] = [
  ['Mamba LM, linear projector', { vision: VISION, projector: 'linear', text: lmBase, imageTokenId: IMAGE_ID, imageSize: 32 }],
  ['Mixture-of-Mamba LM, mlp2x_gelu projector', {
    vision: VISION, projector: 'mlp2x_gelu', imageTokenId: IMAGE_ID, imageSize: 32, imageModality: 'image',
    text: { ...lmBase, mom: { M: 2, specific: ['in_proj', 'x_proj', 'dt_proj', 'out_proj'], names: ['text', 'image'] } },
  }],
  ['MoE-Mamba LM, mlp2x_gelu projector, feature stage 0', {
    vision: VISION, featureStage: 0, projector: 'mlp2x_gelu', imageTokenId: IMAGE_ID, imageSize: 24,
    text: { ...lmBase, moe: { layerTypes: ['mamba', 'moe'], experts: 4, topK: 2, F: 24, act: 'gelu' } },
  }],
];

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-vlm-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
async function checkpoint(s: VlmShape, opts: Parameters<typeof writeVlmCheckpoint>[3] & { w?: VlmWeights } = {}): Promise<{ dir: string; w: VlmWeights }> {
  const dir = path.join(tmp, `vlm-${n++}`);
  const w = opts.w ?? randomVlmWeights(s);
  await writeVlmCheckpoint(dir, s, w, opts);
  return { dir, w };
}
const f32 = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;
const mods = (s: VlmShape): { image: number; text: number } => ({ image: s.text.mom ? 1 : 0, text: 0 });
const textIds = (k: number): number[] => Array.from(randInt(k, FIXTURE_VOCAB - 1)); // never the image id
const pixelsOf = (s: VlmShape, H = s.imageSize, W = s.imageSize): { px: Float32Array; t: (device: string) => Tensor } => {
  const px = uniform(H * W * 3, -2, 2);
  return { px, t: (device) => Tensor.from(px, [1, H, W, 3], { device: device as 'cpu' }) };
};
const flat = (rows: Float64Array[]): Float64Array => {
  const out = new Float64Array(rows.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of rows) out.set(r, (o += r.length) - r.length);
  return out;
};
async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e instanceof MambakitError ? `${e.code}: ${e.message}` : `not coded: ${String(e)}`;
  }
  return 'no error';
}

describe.each(DEVICES)('mamba_vlm on %s', (device) => {
  describe.each(SHAPES)('%s', (_name, s) => {
    let vlm: MambaVLM, w: VlmWeights;
    beforeAll(async () => {
      const ck = await checkpoint(s, { tokenizer: true });
      w = ck.w;
      const m = await loadModel(ck.dir, { device });
      if (m.kind !== 'vlm') throw new Error('not a vlm');
      vlm = m;
    });
    afterAll(() => vlm.dispose());

    test('forward({ image, prompt }) equals float64: placeholder in the middle, and absent (image first)', async () => {
      const { px, t } = pixelsOf(s);
      const text = textIds(7);
      for (const at of [3, -1]) {
        const prompt = at < 0 ? text : [...text.slice(0, at), IMAGE_ID, ...text.slice(at)];
        const pixels = t(device);
        const logits = await vlm.forward({ image: pixels, prompt });
        const ref = vlmRef(s, w, px, s.imageSize, s.imageSize, text, at < 0 ? 0 : at, mods(s));
        expect(logits.shape).toEqual([1, ref.length, s.text.V]);
        expectClose(await f32(logits), flat(ref), 1e-4, `${_name}, placeholder at ${at}`);
        logits.dispose();
        pixels.dispose();
      }
    });

    test('prompt(): ids with image_token_id over the image span, its modalities, embeds = embedding rows + encodeImages', async () => {
      const { px, t } = pixelsOf(s);
      const pixels = t(device);
      const p = await vlm.prompt({ image: pixels, prompt: 'hello <image> world' });
      const before = vlm.tokenizer!.encode('hello '), after = vlm.tokenizer!.encode(' world');
      const nImg = vlm.imageTokens;
      expect(p.imageSpan).toEqual([before.length, before.length + nImg]);
      expect(p.ids).toEqual([...before, ...new Array<number>(nImg).fill(IMAGE_ID), ...after]);
      expect(p.modalities).toEqual(p.ids.map((_, i) => (i >= before.length && i < before.length + nImg ? mods(s).image : 0)));
      expect(p.embeds.shape).toEqual([1, p.ids.length, s.text.D]);
      const e = await f32(p.embeds);
      const D = s.text.D;
      const emb = w.text['backbone.embeddings.weight'];
      const text = [...before, ...after];
      text.forEach((id, k) => {
        const row = k < before.length ? k : k + nImg;
        expectEqual(e.subarray(row * D, (row + 1) * D), emb.subarray(id * D, (id + 1) * D), `text row ${row}`);
      });
      const img = await vlm.encodeImages(pixels);
      expect(img.shape).toEqual([1, nImg, D]);
      expectEqual(e.subarray(before.length * D, (before.length + nImg) * D), await f32(img), 'image rows');
      expectClose(await f32(img), flat(imageTokensRef(s, w, px, s.imageSize, s.imageSize)), 1e-4, 'image tokens vs float64');
      [p.embeds, img, pixels].forEach((x) => x.dispose());
    });

    test('prefill + step = forward (image prompt, then generated text tokens)', async () => {
      const { t } = pixelsOf(s);
      const pixels = t(device);
      const prompt = [...textIds(2), IMAGE_ID, ...textIds(3)];
      const next = textIds(3);
      const full = await f32(await vlm.forward({ image: pixels, prompt: [...prompt, ...next] }));
      const p = await vlm.prompt({ image: pixels, prompt });
      const T = p.ids.length, V = s.text.V;
      const st = vlm.lm.newState(1);
      const modalities = s.text.mom ? [p.modalities] : undefined;
      const got = [await f32(await vlm.lm.prefill(p.embeds, st, { modalities }))];
      for (const id of next.slice(0, -1)) got.push(await f32(await vlm.lm.step([id], st, { modalities: s.text.mom ? [0] : undefined })));
      got.forEach((g, k) => expectClose(g, full.subarray((T - 1 + k) * V, (T + k) * V), 1e-5, `position ${T - 1 + k}`));
      st.dispose();
      p.embeds.dispose();
      pixels.dispose();
    });

    test('generate: the same tokens alone and in a batch of 3 identical requests beside a text-only one', async () => {
      const { t } = pixelsOf(s);
      const pixels = t(device);
      const input = { image: pixels, prompt: 'look: <image> and tell' };
      for (const o of [{ temperature: 0, maxTokens: 6 }, { temperature: 1.5, seed: 11, maxTokens: 6 }]) {
        const alone = await vlm.complete(input, o);
        expect(alone.usage.promptTokens).toBe(vlm.tokenize(input.prompt).length - 1 + vlm.imageTokens);
        expect(alone.tokens.length).toBeGreaterThan(0);
        const [a, b, c, text] = await Promise.all([vlm.complete(input, o), vlm.complete(input, o), vlm.complete(input, o), vlm.complete({ prompt: 'just text' }, o)]);
        for (const r of [a, b, c]) expect(r.tokens).toEqual(alone.tokens);
        expect(text.tokens).toEqual((await vlm.lm.complete(vlm.tokenize('just text'), { ...o, modality: s.text.mom ? 'text' : undefined })).tokens);
      }
      expect(vlm.load.running).toBe(0);
      // the first generated token is the argmax of the forward's last row
      const g = await vlm.complete(input, { temperature: 0, maxTokens: 1 });
      const logits = await f32(await vlm.forward(input));
      const V = s.text.V, last = logits.subarray(logits.length - V);
      expect(g.tokens[0] ?? vlm.tokenizer!.eosTokenId).toBe(last.indexOf(Math.max(...last)));
      pixels.dispose();
    });
  });

  test('encoder: the feature map of each stage and a batch, edits after its blocks, blocks listed', async () => {
    const s = SHAPES[0][1];
    const { dir, w } = await checkpoint(s, { w: randomVlmWeights(s, { unused: true }) }); // the unused head is in the file
    const vlm = await loadVisionLanguageModel(dir, { device });
    expect(vlm.encoderBlocks).toEqual(['stem', 'gated_cnn', 'downsample', 'gated_cnn', 'gated_cnn']);
    expect(vlm.lm.blocks).toEqual(['mamba', 'mamba']);
    const H = 19, W = 26; // odd sizes: the grid is ceil-halved at every stride
    const a = uniform(H * W * 3, -2, 2), b = uniform(H * W * 3, -2, 2);
    const both = new Float32Array([...a, ...b]);
    const feats = await vlm.encoder.forward(Tensor.from(both, [2, H, W, 3], { device }));
    const [h, wd] = vlm.encoder.grid(H, W);
    expect([h, wd]).toEqual([3, 4]);
    expect(feats.shape).toEqual([2, h * wd, 12]);
    const toks = await vlm.encodeImages(Tensor.from(both, [2, H, W, 3], { device }));
    const data = await f32(toks);
    const D = s.text.D;
    expectClose(data.subarray(0, h * wd * D), flat(imageTokensRef(s, w, a, H, W)), 1e-4, 'image 0');
    expectClose(data.subarray(h * wd * D), flat(imageTokensRef(s, w, b, H, W)), 1e-4, 'image 1');
    // an add edit after stage 0's gated block (block 1; rows b·h·w + position of its 5 × 7 stream of 8 channels)
    const v = uniform(8, -1, 1);
    const rows = [0, 3, 34];
    const edited = await vlm.encodeImages(Tensor.from(a, [1, H, W, 3], { device }), { encoderEdits: [{ after: 1, rows, add: Tensor.from(v, [8], { device }) }] });
    const ref = imageTokensRef(s, w, a, H, W, (block, x, _rows, C) => {
      if (block === 1) for (const r of rows) for (let c = 0; c < C; ++c) x[r * C + c] += v[c];
    });
    expectClose(await f32(edited), flat(ref), 1e-4, 'encoder edit');
    expect(maxDiff(await f32(edited), data.subarray(0, h * wd * D))).toBeGreaterThan(1e-3);
    expect(await code(vlm.encodeImages(Tensor.from(a, [1, H, W, 3], { device }), { encoderEdits: [{ after: 5, rows: [0], add: Tensor.from(v, [8], { device }) }] }))).toMatch(/^E_ARG/);
    // the language model's edits (rows = prompt positions) pass through forward
    const prompt = [5, IMAGE_ID, 7];
    const dv = uniform(D, -1, 1);
    const px = Tensor.from(a, [1, H, W, 3], { device });
    const le = await f32(await vlm.forward({ image: px, prompt }, { edits: [{ after: 0, rows: [1], add: Tensor.from(dv, [D], { device }) }] }));
    const img = imageTokensRef(s, w, a, H, W);
    const lref = mambaRef(s.text, w.text, [5, ...img, 7], 1e-5, undefined, (l, t, hh) => { if (l === 0 && t === 1) hh.forEach((_, i) => { hh[i] += dv[i]; }); });
    expectClose(le, flat(lref), 1e-4, 'LM edit');
    vlm.dispose();
  });

  test('string prompts: <image> split around the tokenizer, BOS once and before a placeholder-less image; PNG input with the config\'s normalization', async () => {
    const s: VlmShape = { ...SHAPES[0][1], imageSize: 16 };
    const mean = [0.3, 0.5, 0.6], std = [0.2, 0.25, 0.3];
    const { dir, w } = await checkpoint(s, { tokenizer: { bos: true }, config: { image_mean: mean, image_std: std, crop_pct: 0.875 } });
    const vlm = await loadVisionLanguageModel(dir, { device });
    const tok = vlm.tokenizer!;
    const bos = tok.bosTokenId!;
    expect(vlm.tokenize('hello <image> world')).toEqual([...tok.encode('hello '), IMAGE_ID, ...tok.encode(' world').slice(1)]);
    expect(vlm.tokenize('hello world')).toEqual(tok.encode('hello world'));
    const png = await sharp(Buffer.from(randInt(23 * 17 * 3, 256).map((x) => x & 255)), { raw: { width: 23, height: 17, channels: 3 } }).png().toBuffer();
    const p = await vlm.prompt({ image: png, prompt: 'hello world' });
    expect(p.ids[0]).toBe(bos);
    expect(p.imageSpan).toEqual([1, 1 + vlm.imageTokens]);
    const px = await preprocessImage(png, { size: 16, cropPct: 0.875, mean, std });
    const logits = await vlm.forward({ image: png, prompt: 'hello world' });
    expectClose(await f32(logits), flat(vlmRef(s, w, px, 16, 16, tok.encode('hello world'), 1)), 1e-4, 'png');
    p.embeds.dispose();
    vlm.dispose();
  });

  test('sharded weights, bf16 weights within 2e-2 of f32', async () => {
    const s = SHAPES[1][1];
    const { dir } = await checkpoint(s, { shardBytes: 20_000 });
    expect(fs.existsSync(path.join(dir, 'model.safetensors.index.json'))).toBe(true);
    const a = await loadVisionLanguageModel(dir, { device });
    const b = await loadVisionLanguageModel(dir, { device, dtype: 'bf16' });
    const { t } = pixelsOf(s);
    const input = { image: t(device), prompt: [1, 2, IMAGE_ID, 3] };
    const x = await f32(await a.forward(input)), y = await f32(await b.forward(input));
    expect(maxDiff(x, y) / Math.max(...x.map(Math.abs))).toBeLessThan(2e-2);
    a.dispose();
    b.dispose();
  });
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('bad checkpoints, configs and inputs are coded errors', () => {
  const s = SHAPES[0][1];
  const mom = SHAPES[1][1];
  const load = async (shape: VlmShape, opts: Parameters<typeof writeVlmCheckpoint>[3]): Promise<string> => code(loadModel((await checkpoint(shape, opts)).dir));

  test('config', async () => {
    expect(await load(s, { config: { vision_config: undefined } })).toMatch(/^E_FORMAT: .*config\.json: config key 'vision_config' must be an object/);
    expect(await load(s, { config: { vision_config: { depths: [1, 2], dims: [8] } } })).toMatch(/^E_FORMAT: .*\(vision_config\): depths and dims/);
    expect(await load(s, { config: { vision_config: { depths: [1, 2], dims: [8, 12], feature_stage: 2 } } })).toMatch(/'vision_config\.feature_stage' must be a stage index in \[0, 1\], found 2/);
    expect(await load(s, { config: { projector_type: 'mlp3x_gelu' } })).toMatch(/^E_FORMAT: .*'projector_type' must be one of "linear", "mlp2x_gelu", found "mlp3x_gelu"/);
    expect(await load(s, { config: { text_config: { model_type: 'mamba' } } })).toMatch(/^E_FORMAT: .*\(text_config\): config key 'hidden_size' is missing/);
    expect(await load(s, { config: { image_token_id: undefined } })).toMatch(/'image_token_id' must be a token id/);
    expect(await load(s, { config: { image_token_id: -1 } })).toMatch(/'image_token_id' must be a token id/);
    expect(await load(s, { config: { image_token_id: s.text.V } })).toMatch(new RegExp(`^E_FORMAT: .*'image_token_id' is ${s.text.V}, outside the language model's vocabulary \\[0, ${s.text.V}\\)`));
    expect(await load(s, { config: { image_modality: 'image' } })).toMatch(/'image_modality' is given, but the mamba language model has no modalities/);
    expect(await load(mom, { config: { image_modality: undefined } })).toMatch(/'image_modality' must name one of the language model's modalities \(text, image\)/);
    expect(await load(mom, { config: { image_modality: 'video' } })).toMatch(/'image_modality' must name/);
    expect(await load(mom, { config: { image_modality: 0 } })).toMatch(/'image_modality' and 'text_modality' are both "text"/);
    expect(await load(s, { config: { image_size: 0 } })).toMatch(/'image_size' must be an integer in \[1, 4096\]/);
    expect(await load(s, { config: { image_mean: [0.5, 0.5] } })).toMatch(/'image_mean' must be 3 numbers/);
    expect(await load(s, { config: { image_std: [0.2, 0, 0.2] } })).toMatch(/'image_std' must be 3 positive numbers/);
  });

  test('weights: missing, misshapen, unexpected, stray; the unused head checked when present; the tokenizer needs the image token', async () => {
    const drop = (name: string) => (t: Record<string, unknown>) => { delete t[name]; };
    expect(await load(s, { tensors: drop('mm_projector.0.bias') })).toMatch(/^E_FORMAT: .*: tensor 'mm_projector\.0\.bias' is missing \(expected \[32\]\)/);
    expect(await load(s, { tensors: drop('vision_tower.stages.1.blocks.1.fc2.weight') })).toMatch(/tensor 'vision_tower\.stages\.1\.blocks\.1\.fc2\.weight' is missing/);
    expect(await load(s, { tensors: drop('language_model.backbone.layers.1.mixer.D') })).toMatch(/tensor 'language_model\.backbone\.layers\.1\.mixer\.D' is missing/);
    expect(await load(s, { tensors: drop('language_model.backbone.embeddings.weight') })).toMatch(/tensor 'language_model\.backbone\.embeddings\.weight' is missing/);
    const reshape = (name: string, shape: number[]) => (t: Record<string, { shape: number[]; data: Float32Array }>) => {
      t[name] = { ...t[name], shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
    };
    expect(await load(s, { tensors: reshape('mm_projector.0.weight', [32, 8]) as never }))
      .toMatch(/model\.safetensors: tensor 'mm_projector\.0\.weight' has shape \[32, 8\], expected \[32, 12\] \(projector_type linear: vision stage 1 has 12 channels/);
    expect(await load(s, { tensors: reshape('vision_tower.stem.conv1.weight', [4, 3, 5, 5]) as never })).toMatch(/'vision_tower\.stem\.conv1\.weight' has shape \[4, 3, 5, 5\], expected \[4, 3, 3, 3\]/);
    expect(await load(s, { tensors: reshape('language_model.backbone.layers.0.mixer.out_proj.weight', [32, 8]) as never })).toMatch(/'language_model\.backbone\.layers\.0\.mixer\.out_proj\.weight' has shape \[32, 8\], expected \[32, 64\]/);
    const add = (name: string, shape: number[]) => (t: Record<string, unknown>) => { t[name] = { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }; };
    expect(await load(s, { tensors: add('mm_projector.2.weight', [32, 32]) })).toMatch(/unexpected tensor 'mm_projector\.2\.weight' \[32, 32\]/);
    expect(await load(s, { tensors: add('lm_head.weight', [3, 3]) })).toMatch(/unexpected tensor 'lm_head\.weight' \[3, 3\] \(a mamba_vlm checkpoint's names start with 'vision_tower\.', 'mm_projector\.', 'language_model\.'\)/);
    expect(await load(s, { tensors: add('vision_tower.stages.1.blocks.2.norm.weight', [12]) })).toMatch(/unexpected tensor 'vision_tower\.stages\.1\.blocks\.2\.norm\.weight'/);
    expect(await load(s, { tensors: add('language_model.backbone.layers.2.norm.weight', [32]) })).toMatch(/unexpected tensor 'language_model\.backbone\.layers\.2\.norm\.weight'/);
    expect(await load(s, { tensors: add('vision_tower.head.fc.weight', [7, 48]) })).toMatch(/'vision_tower\.head\.fc\.weight' has shape \[7, 48\], expected \[5, 48\]/);
    const mlp: VlmShape = { ...s, projector: 'mlp2x_gelu' };
    expect(await load(mlp, { tensors: drop('mm_projector.2.bias') })).toMatch(/tensor 'mm_projector\.2\.bias' is missing/);
    expect(await load(s, { tokenizer: true, config: { image_token_id: FIXTURE_VOCAB + 1 } }))
      .toMatch(/'image_token_id' \(\d+\) is not a token of tokenizer\.json: give the image placeholder a token/);
    // a tied-embedding LM may keep its lm_head copy, under the prefix
    const { dir } = await checkpoint(s, { tensors: add('language_model.lm_head.weight', [s.text.V, s.text.D]) });
    (await loadVisionLanguageModel(dir)).dispose();
  });

  test('kinds: each loader refuses the other kind before any weight loads; loadModel names mamba_vlm', async () => {
    const { dir } = await checkpoint(s);
    expect(await code(loadLanguageModel(dir))).toBe(`E_ARG: ${dir}: model_type "mamba_vlm" is a MambaVLM, not a language model (use loadVisionLanguageModel or \`mambakit generate --image\` for vision-language models)`);
    const lm = path.join(tmp, 'plain-lm');
    await writeMambaCheckpoint(lm, s.text, (await import('../helpers/mamba-ckpt')).randomMambaWeights(s.text));
    expect(await code(loadVisionLanguageModel(lm))).toMatch(/^E_ARG: .*"mamba" is a MambaLM, not a vision-language model \(use loadLanguageModel/);
    expect(await code(loadModel(dir, { kind: 'bogus' as 'vlm' }))).toMatch(/kind must be 'language', 'classifier', 'diffusion' or 'vlm'/);
  });

  test('inputs', async () => {
    const { dir } = await checkpoint(s, { tokenizer: true });
    const vlm = await loadVisionLanguageModel(dir);
    const { t } = pixelsOf(s);
    const image = t('cpu');
    expect(await code(vlm.forward({ image, prompt: 'a <image> b <image>' }))).toBe("E_ARG: prompt has 2 image placeholders '<image>': a prompt takes one image");
    expect(await code(vlm.forward({ image, prompt: [1, IMAGE_ID, 2, IMAGE_ID] }))).toMatch(/^E_ARG: prompt has 2 image placeholders \(image_token_id \d+\)/);
    expect(await code(vlm.forward({ prompt: 'what is <image>?' }))).toMatch(/^E_ARG: prompt has an image placeholder \(image_token_id \d+\) but no image was given/);
    expect(await code(vlm.complete({ prompt: [1, IMAGE_ID] }))).toMatch(/^E_ARG: prompt has an image placeholder/);
    expect(await code(vlm.forward({ image, prompt: [1, 99999] }))).toMatch(/^E_ARG: embed: token id 99999/);
    expect(await code(vlm.forward({ image: Tensor.from(uniform(2 * 32 * 32 * 3), [2, 32, 32, 3]), prompt: [1] }))).toMatch(/^E_SHAPE: prompt: the image must be one image/);
    expect(await code(vlm.forward({ image: Tensor.from(uniform(32 * 32 * 4), [1, 32, 32, 4]), prompt: [1] }))).toMatch(/^E_SHAPE: .*pixels must be f32 \[B >= 1, H, W, 3\]/);
    expect(await code(vlm.forward({ image: Buffer.from('not an image'), prompt: [1] }))).toMatch(/^E_FORMAT: image 0 \(12 bytes\): cannot decode/);
    expect(await code(vlm.project(Tensor.from(uniform(16), [1, 2, 8])))).toMatch(/^E_SHAPE: project: features must be f32 \[B, n, 12\]/);
    expect(await code(vlm.complete({ prompt: [] }))).toMatch(/^E_ARG: generate: empty prompt/);
    expect((await vlm.complete({ image, prompt: [] }, { maxTokens: 1 })).usage.promptTokens).toBe(vlm.imageTokens); // the image alone is a prompt
    expect(await code(() => vlm.tokenize(42 as unknown as string))).toMatch(/^E_ARG: prompt must be a string or token ids/);
    vlm.tokenizer = null;
    expect(await code(vlm.forward({ image, prompt: 'text' }))).toMatch(/^E_ARG: mamba_vlm: this model has no tokenizer\.json; pass token ids/);
    vlm.dispose();
  });
});

describe('mambakit generate --image', () => {
  test('streams what vlm.complete({ image, prompt }) returns; --image on a language model is E_ARG', async () => {
    const s = SHAPES[1][1];
    const { dir } = await checkpoint(s, { tokenizer: true });
    const png = path.join(tmp, 'img.png');
    await sharp(Buffer.from(randInt(40 * 30 * 3, 256).map((x) => x & 255)), { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(png);
    const vlm = await loadVisionLanguageModel(dir);
    const expected = await vlm.complete({ image: png, prompt: 'see <image> now' }, { temperature: 0, maxTokens: 5 });
    vlm.dispose();
    const out: string[] = [], err: string[] = [];
    const so = jest.spyOn(process.stdout, 'write').mockImplementation((c) => { out.push(String(c)); return true; });
    const se = jest.spyOn(process.stderr, 'write').mockImplementation((c) => { err.push(String(c)); return true; });
    try {
      await cmdGenerate(['--model', dir, '--image', png, '--temperature', '0', '--max-tokens', '5', 'see <image> now']);
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    expect(out.join('')).toBe(expected.text + '\n');
    expect(err.join('')).toContain(`${expected.usage.promptTokens} prompt + ${expected.tokens.length} generated tokens`);
    const lm = path.join(tmp, 'cli-lm');
    await writeMambaCheckpoint(lm, lmBase, (await import('../helpers/mamba-ckpt')).randomMambaWeights(lmBase));
    expect(await code(cmdGenerate(['--model', lm, '--image', png, 'hi']))).toMatch(/^E_ARG: --image: .* is not a vision-language model/);
  });
});

