// MMaDA's text-to-image at the token level on a random-weight checkpoint in the published layout: the t2i
// sequences as prompting_utils.py builds them, and the MaskGIT sampler in deterministic mode token for token
// against the float64 transcription of t2i_generate (test/helpers/maskgit-ref.ts), with and without guidance.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { LladaLM, MambakitError, loadModel } from '../../lib';
import { MMADA_SPECIAL_TOKENS, t2iBatch } from '../../lib/diffusion/mmada-prompts';
import { maskLen } from '../../lib/diffusion/maskgit';
import { DEVICES, emulated } from '../helpers/backends';
import { LladaCheckpoint, writeLladaCheckpoint } from '../helpers/llada-ckpt';
import { lladaForward } from '../helpers/llada-ref';
import { refT2i } from '../helpers/maskgit-ref';
import { randInt } from '../helpers/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-mmada-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// MMaDA's reserved ids sit at 126084…: a test vocabulary must reach them; the mask id is MMaDA's 126336 too.
const V_TEXT = 126100, CODES = 48, V = V_TEXT + CODES + 400, MASK = 126336;

describe('MMaDA t2i sequences (prompting_utils.py t2i_gen_prompt)', () => {
  const m = { llmVocabSize: V_TEXT, codebookSize: CODES, imageTokens: 4, maxTextLen: 6, bos: 1, eos: 2, maskId: MASK,
    special: { soi: 126084, eoi: 126085, t2i: 126088, mmu: 126089, ipad: 126093 } };
  test('[iPAD]… <|t2i|> <bos> text <eos> <|soi|> image <|eoi|>, padded, truncated, bos added', () => {
    const b = t2iBatch([[1, 5, 6], [7], [1, 3, 3, 3, 3, 3, 3, 3]], m, [null, [0, -1, 47, -1], null]);
    const row = (i: number) => Array.from(b.ids.subarray(i * b.L, (i + 1) * b.L));
    const P = MMADA_SPECIAL_TOKENS.ipad, M = MASK;
    expect(b.L).toBe(7 + 4 + 2);
    expect(row(0)).toEqual([P, P, 126088, 1, 5, 6, 2, 126084, M, M, M, M, 126085]);
    expect(row(1)).toEqual([P, P, P, 126088, 1, 7, 2, 126084, V_TEXT, M, V_TEXT + 47, M, 126085]);
    expect(row(2)).toEqual([126088, 1, 3, 3, 3, 3, 2, 126084, M, M, M, M, 126085]);  // cut to maxTextLen + 1, eos last
    expect(Array.from(b.attention.subarray(0, b.L))).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(b.imageStart).toBe(8);
    expect(() => t2iBatch([[1]], m, [[0, 0, 0, 48]])).toThrow(MambakitError);
  });
  test('the cosine schedule in the reference float32: mask_len per step', () => {
    // N = 1024, 12 steps, nothing known: floor(1024 cos(π/2 (s+1)/12)) clamped to [1, unknown − 1]; the values
    // computed with numpy in float32 (torch.cos(t * math.pi * 0.5) on a float32 tensor)
    expect(Array.from({ length: 12 }, (_, s) => maskLen(s, 12, 1024, 1024))).toEqual([1015, 989, 946, 886, 812, 724, 623, 511, 391, 265, 133, 1]);
    expect(maskLen(0, 1, 16, 1)).toBe(1);
  });
});

describe.each(DEVICES)('MMaDA MaskGIT on %s', (device) => {
  let ck: LladaCheckpoint;
  let model: LladaLM;
  beforeAll(async () => {
    ck = await writeLladaCheckpoint(path.join(tmp, device), { D: 32, H: 2, KVH: 1, L: 2, F: 48, V, vocabSize: V, maskId: MASK, dtype: 'f32', tokenizer: false, shardBytes: 1 << 30 });
    const cfgFile = path.join(ck.dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, model_type: 'mmada', llm_vocab_size: V_TEXT, codebook_size: CODES, num_vq_tokens: 16 }));
    model = await loadModel(ck.dir, { device, kind: 'diffusion' });
  }, 120000);
  afterAll(() => model?.dispose());

  // under the CUDA emulator every forward's 126k-row head is slow: two short runs there (both guidance branches)
  const cases = emulated && device === 'cuda' ? [[0, 2], [1.5, 2]] : [[0, 4], [1.5, 6], [0.5, 1]];
  test.each(cases)('deterministic t2i = the float64 t2i_generate, guidance %s, %i steps, batch of 2', async (g, steps) => {
    const prompts = [Array.from(randInt(3, 1000), (v) => v + 3), Array.from(randInt(5, 1000), (v) => v + 3)];
    const opts = { steps, guidance: g, deterministic: true, maxTextLen: 8, bos: 1, eos: 2 };
    const it = model.imageTokens(prompts, opts);
    let r;
    for (;;) { const s = await it.next(); if (s.done) { r = s.value; break; } }
    const layout = model.imageLayout(opts);
    const cond = t2iBatch(prompts, layout), un = t2iBatch(prompts.map(() => []), layout);
    const ref = refT2i(lladaForward(ck.weights, ck.config), cond.ids, cond.attention, g > 0 ? un.ids : null, g > 0 ? un.attention : null, 2, cond.L,
      { llmVocabSize: V_TEXT, codebookSize: CODES, imageTokens: 16, maskId: MASK, imageStart: cond.imageStart }, { steps, guidance: g });
    expect(Array.from(r.codes)).toEqual(Array.from(ref));
    expect(r.nfe).toBe(steps);
    expect(r.codes.every((c) => c >= 0 && c < CODES)).toBe(true);
  });

  test('seeded sampling is reproducible; coded errors', async () => {
    const run = async (seed: number) => {
      const it = model.imageTokens([[5, 6]], { steps: 3, seed, maxTextLen: 4, bos: 1, eos: 2 });
      for (;;) { const s = await it.next(); if (s.done) return Array.from(s.value.codes); }
    };
    expect(await run(3)).toEqual(await run(3));
    expect(await run(3)).not.toEqual(await run(4));
    expect(() => model.imageTokens([[5]], { steps: 0, bos: 1, eos: 2 })).toThrow(/steps must be an integer ≥ 1/);
    expect(() => model.imageTokens([[5]], { guidance: -1, bos: 1, eos: 2 })).toThrow(/guidance must be a number ≥ 0/);
    expect(() => model.imageTokens([[5]], { maxTextLen: 5000, bos: 1, eos: 2 })).toThrow(/exceed the model's/);
  });
});
