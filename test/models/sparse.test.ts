// MoE-Mamba and Mixture-of-Mamba end to end: random checkpoints on disk (FORMATS.md §2, §3) →
// loadModel → logits against a float64 reference; forward = prefill + step; the sparse models reduce
// exactly to the dense one where they should; expert load counters; generation; bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, createServer, loadLanguageModel, loadModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { expectClose, expectEqual } from '../helpers/compare';
import { MambaShape, Weights, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { mambaRef } from '../helpers/mamba-ref';
import { randInt } from '../helpers/random';

const base = { D: 32, L: 4, V: 53, N: 7, expand: 2, K: 4 };
const alt: ('mamba' | 'moe')[] = ['mamba', 'moe', 'mamba', 'moe'];
const SHAPES: [string, MambaShape][] = [
  ['MoE-Mamba, 8 experts top-1 relu (Switch)', { ...base, moe: { layerTypes: alt, experts: 8, topK: 1, F: 48, act: 'relu' } }],
  ['MoE-Mamba, 5 experts top-2 gelu renormalized', { ...base, moe: { layerTypes: alt, experts: 5, topK: 2, F: 37, act: 'gelu', renorm: true } }],
  ['MoE-Mamba, swiglu top-3, moe first', { ...base, L: 3, moe: { layerTypes: ['moe', 'mamba', 'moe'], experts: 6, topK: 3, F: 19, act: 'swiglu' } }],
  ['MoE-Mamba, silu top-2, all moe', { ...base, L: 2, moe: { layerTypes: ['moe', 'moe'], experts: 3, topK: 2, F: 21, act: 'silu' } }],
  ['Mixture-of-Mamba, 3 modalities, all four projections', { ...base, L: 2, mom: { M: 3, specific: ['in_proj', 'x_proj', 'dt_proj', 'out_proj'] } }],
  ['Mixture-of-Mamba, 2 modalities, in/out_proj with biases', { ...base, L: 2, useBias: true, mom: { M: 2, specific: ['in_proj', 'out_proj'] } }],
];

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-sparse-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
async function checkpoint(s: MambaShape, w: Weights = randomMambaWeights(s), dtype?: 'BF16'): Promise<{ dir: string; w: Weights }> {
  const dir = path.join(tmp, `ckpt-${n++}`);
  await writeMambaCheckpoint(dir, s, w, { dtype });
  return { dir, w };
}
const rows = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;
const randMods = (s: MambaShape, B: number, T: number): number[][] => Array.from({ length: B }, () => Array.from(randInt(T, s.mom?.M ?? 1)));

describe.each(DEVICES)('sparse Mamba models on %s', (device) => {
  test.each(SHAPES)('%s: forward equals float64, and prefill + step equal forward', async (name, s) => {
    const { dir, w } = await checkpoint(s);
    const model = await loadLanguageModel(dir, { device });
    expect(model.config.modelType).toBe(s.moe ? 'moe_mamba' : 'mixture_of_mamba');
    const T = 9, B = 2;
    const seqs = [Array.from(randInt(T, s.V)), Array.from(randInt(T, s.V))];
    const mods = s.mom ? randMods(s, B, T) : undefined;
    const before = await model.expertLoad();
    const logits = await model.forward(seqs, { modalities: mods });
    const all = await rows(logits);
    for (let b = 0; b < B; ++b) {
      const flat = new Float64Array(T * s.V);
      mambaRef(s, w, seqs[b], 1e-5, mods?.[b]).forEach((r, t) => flat.set(r, t * s.V));
      expectClose(all.subarray(b * T * s.V, (b + 1) * T * s.V), flat, 1e-4, `${name} row ${b}`);
    }
    if (s.moe) { // every (token, choice) pair was counted once per MoE block
      const after = await model.expertLoad();
      expect(after.length).toBe(s.moe.layerTypes.filter((t) => t === 'moe').length);
      after.forEach((c, l) => expect(c.reduce((a, v, e) => a + v - before[l][e], 0)).toBe(B * T * s.moe!.topK));
    }
    const state = model.newState(B);
    const last = await model.prefill(seqs.map((q) => q.slice(0, 3)), state, { modalities: mods?.map((m) => m.slice(0, 3)) });
    const pick = (t: number) => Float32Array.from({ length: B * s.V }, (_, i) => all[Math.floor(i / s.V) * T * s.V + t * s.V + (i % s.V)]);
    expectClose(await rows(last), pick(2), 1e-5, 'prefill');
    for (let t = 3; t < T; ++t)
      expectClose(await rows(await model.step(seqs.map((q) => q[t]), state, { modalities: mods?.map((m) => m[t]) })), pick(t), 1e-5, `step ${t}`);
    state.dispose();
    model.dispose();
  });

  test('bf16 weights stay within bf16 tolerance of f32 (MoE-Mamba and Mixture-of-Mamba)', async () => {
    for (const [, s] of [SHAPES[1], SHAPES[4]]) {
      const { dir } = await checkpoint(s);
      const f32 = await loadLanguageModel(dir, { device });
      const bf16 = await loadLanguageModel(dir, { device, dtype: 'bf16' });
      const seqs = [Array.from(randInt(7, s.V))];
      const mods = s.mom ? randMods(s, 1, 7) : undefined;
      expectClose(await rows(await bf16.forward(seqs, { modalities: mods })), await rows(await f32.forward(seqs, { modalities: mods })), 3e-2, 'bf16 vs f32');
      f32.dispose();
      bf16.dispose();
    }
  });

  test('Mixture-of-Mamba with one modality, or with no modality-specific projection, gives exactly the dense logits', async () => {
    const dense: MambaShape = { ...base, L: 2, useBias: true };
    const w = randomMambaWeights(dense);
    const d = await loadLanguageModel((await checkpoint(dense, w)).dir, { device });
    // the same numbers stored as [1, out, in] stacks, and as a 3-modality model that specializes nothing
    const one = await loadLanguageModel((await checkpoint({ ...dense, mom: { M: 1, specific: ['in_proj', 'x_proj', 'dt_proj', 'out_proj'] } }, w)).dir, { device });
    const none = await loadLanguageModel((await checkpoint({ ...dense, mom: { M: 3, specific: [] } }, w)).dir, { device });
    const seqs = [Array.from(randInt(13, dense.V)), Array.from(randInt(13, dense.V))];
    const ref = await rows(await d.forward(seqs));
    expectEqual(await rows(await one.forward(seqs)), ref, 'M = 1');
    expectEqual(await rows(await none.forward(seqs, { modalities: randMods({ ...dense, mom: { M: 3, specific: [] } }, 2, 13) })), ref, 'no specific projection');
    for (const m of [d, one, none]) m.dispose();
  });

  test('a MoE block with one expert is the plain FFN', async () => {
    const s: MambaShape = { ...base, L: 2, moe: { layerTypes: ['mamba', 'moe'], experts: 1, topK: 1, F: 40, act: 'gelu' } };
    const { dir, w } = await checkpoint(s);
    const model = await loadLanguageModel(dir, { device });
    const seq = Array.from(randInt(6, s.V));
    // reference: the MoE block replaced by h + w_out · gelu(w_in · rmsnorm(h)), i.e. mambaRef with one expert (g = 1)
    const flat = new Float64Array(6 * s.V);
    mambaRef(s, w, seq).forEach((r, t) => flat.set(r, t * s.V));
    expectClose(await rows(await model.forward([seq])), flat, 1e-4, 'one expert');
    model.dispose();
  });

  test('input embeddings (e.g. image latents) in place of token ids: the embedding rows give the token logits', async () => {
    const s = SHAPES[4][1];
    const { dir, w } = await checkpoint(s);
    const model = await loadLanguageModel(dir, { device });
    const seq = Array.from(randInt(8, s.V));
    const mods = randMods(s, 1, 8);
    const emb = w['backbone.embeddings.weight'];
    const x = new Float32Array(8 * s.D);
    seq.forEach((tok, t) => x.set(emb.subarray(tok * s.D, (tok + 1) * s.D), t * s.D));
    const embeds = Tensor.from(x, [1, 8, s.D], { device });
    expectEqual(await rows(await model.forward(embeds, { modalities: mods })), await rows(await model.forward([seq], { modalities: mods })), 'embeddings vs ids');
    const st = model.newState(1);
    // (last-position-only head: a one-row GEMM, so equal to rounding)
    expectClose(await rows(await model.prefill(embeds, st, { modalities: mods })), (await rows(await model.forward([seq], { modalities: mods }))).subarray(7 * s.V), 1e-6, 'prefill');
    await expect(model.forward(Tensor.from(new Float32Array(8 * 5), [1, 8, 5], { device }), { modalities: mods })).rejects.toMatchObject({ code: 'E_SHAPE' });
    st.dispose();
    model.dispose();
  });

  test('generate runs on both sparse families, greedy output identical alone and batched', async () => {
    for (const [, s] of [SHAPES[0], SHAPES[4]]) {
      const { dir } = await checkpoint(s);
      const model = await loadLanguageModel(dir, { device });
      const prompts = [0, 1, 2].map(() => Array.from(randInt(5, s.V)));
      const modality = s.mom ? 'image' : undefined;
      const alone = [];
      for (const p of prompts) alone.push((await model.complete(p, { maxTokens: 6, temperature: 0, modality })).tokens);
      const together = await Promise.all(prompts.map((p) => model.complete(p, { maxTokens: 6, temperature: 0, modality })));
      together.forEach((r, i) => expect(r.tokens).toEqual(alone[i]));
      model.dispose();
    }
  });

  test('the HTTP server takes a modality for Mixture-of-Mamba requests (400 without one)', async () => {
    const mom = await loadLanguageModel((await checkpoint(SHAPES[4][1])).dir, { device });
    const app = createServer(mom, { modelName: 'mom', maxBatch: 2, maxQueue: 2, maxPromptTokens: 32 });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const post = (body: unknown) => fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await post({ prompt: [1, 2, 3], max_tokens: 3, temperature: 0, modality: 'image' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
    expect((await post({ prompt: [1, 2, 3], max_tokens: 3 })).status).toBe(400);
    expect((await post({ prompt: [1, 2, 3], max_tokens: 3, modality: 'smell' })).status).toBe(400);
    await app.close();
    mom.dispose();
  });

  test('bad input: coded errors', async () => {
    const mom = await loadLanguageModel((await checkpoint(SHAPES[4][1])).dir, { device });
    const moe = await loadLanguageModel((await checkpoint(SHAPES[0][1])).dir, { device });
    await expect(mom.forward([[1, 2, 3]])).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining('modalities') });
    await expect(mom.forward([[1, 2, 3]], { modalities: [[0, 3, 1]] })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining('[0, 1]') });
    await expect(mom.forward([[1, 2, 3]], { modalities: [[0, 'video', 1]] })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(mom.forward([[1, 2, 3]], { modalities: [[0, 1]] })).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(mom.forward([[1, 2, 3]], { modalities: { data: Int32Array.from([0, 1, 5]), shape: [1, 3] } })).rejects.toMatchObject({ code: 'E_ARG' });
    expect(await mom.forward([[1, 2, 3]], { modalities: [['text', 'image', 'speech']] })).toBeInstanceOf(Tensor);
    await expect(moe.forward([[1, 2, 3]], { modalities: [[0, 0, 0]] })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringContaining('moe_mamba') });
    await expect(mom.complete([1, 2], { maxTokens: 2 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(mom.complete([1, 2], { maxTokens: 2, modality: 'smell' })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(moe.complete([1, 2], { maxTokens: 2, modality: 0 })).rejects.toMatchObject({ code: 'E_ARG' });
    mom.dispose();
    moe.dispose();
  });
});

describe('sparse checkpoints that do not match their config', () => {
  const write = async (s: MambaShape, edit: (cfg: Record<string, unknown>, w: Weights) => void): Promise<string> => {
    const { dir, w } = await checkpoint(s);
    const cfgFile = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    edit(cfg, w);
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    return dir;
  };
  test.each([
    ['num_experts_per_tok > num_experts', (c: Record<string, unknown>) => { c.num_experts_per_tok = 9; }, /num_experts_per_tok/],
    ['layer_types of the wrong length', (c: Record<string, unknown>) => { c.layer_types = ['mamba', 'moe']; }, /layer_types/],
    ['unknown expert activation', (c: Record<string, unknown>) => { c.expert_act = 'tanh'; }, /expert_act/],
    ['a stacked expert tensor of the wrong shape', (c: Record<string, unknown>) => { c.expert_intermediate_size = 47; }, /moe\.experts\.w_in.*expected \[8, 47, 32\]/],
  ])('MoE-Mamba: %s is E_FORMAT', async (_, edit, msg) => {
    await expect(loadModel(await write(SHAPES[0][1], edit))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(msg) });
  });
  test.each([
    ['modality_specific with an unknown projection', (c: Record<string, unknown>) => { c.modality_specific = ['in_proj', 'conv1d']; }, /modality_specific/],
    ['a per-modality weight stored shared', (c: Record<string, unknown>) => { c.num_modalities = 4; c.modality_names = ['a', 'b', 'c', 'd']; }, /in_proj\.weight.*expected \[4, 128, 32\]/],
    ['modality_names of the wrong length', (c: Record<string, unknown>) => { c.modality_names = ['text']; }, /modality_names/],
  ])('Mixture-of-Mamba: %s is E_FORMAT', async (_, edit, msg) => {
    await expect(loadModel(await write(SHAPES[4][1], edit))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(msg) });
  });
});
