// generate/complete on a random model with token-id prompts: greedy equals the argmax chain of
// forward(), seeded sampling reproduces, stop reasons, abort, bad options.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambaLM, loadLanguageModel, memory } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { randInt } from '../helpers/random';

const S: MambaShape = { D: 32, L: 2, V: 64, N: 8, expand: 2, K: 4 };
let tmp: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-gen-'));
  await writeMambaCheckpoint(tmp, S, randomMambaWeights(S));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(DEVICES)('generate on %s', (device) => {
  let model: MambaLM;
  beforeAll(async () => { model = await loadLanguageModel(tmp, { device }); });
  afterAll(() => model.dispose());

  test('greedy decoding equals the argmax chain of forward()', async () => {
    const prompt = Array.from(randInt(5, S.V));
    const r = await model.complete(prompt, { temperature: 0, maxTokens: 6 });
    expect(r.tokens).toHaveLength(6);
    expect(r.finishReason).toBe('length');
    expect(r.usage).toEqual({ promptTokens: 5, completionTokens: 6 });
    const seq = [...prompt];
    for (const t of r.tokens) {
      const logits = (await (await model.forward([seq])).data()) as Float32Array;
      const last = logits.subarray((seq.length - 1) * S.V);
      let best = 0;
      for (let i = 1; i < S.V; ++i) if (last[i] > last[best]) best = i;
      expect(t).toBe(best);
      seq.push(t);
    }
  });

  test('the same seed gives the same tokens; chunks carry ids and logprobs', async () => {
    const prompt = Array.from(randInt(4, S.V));
    // a hot temperature: this random model's logits are peaked (the tied embedding favours a few ids)
    const opts = { temperature: 8, topK: 40, topP: 0.99, seed: 1234, maxTokens: 12 };
    const a = await model.complete(prompt, opts);
    const b = await model.complete(prompt, opts);
    expect(a.tokens).toEqual(b.tokens);
    const others = await Promise.all([1, 2, 3].map((seed) => model.complete(prompt, { ...opts, seed })));
    expect(others.some((o) => o.tokens.join() !== a.tokens.join())).toBe(true);
    const chunks = [];
    for await (const c of model.generate(prompt, opts)) chunks.push(c);
    expect(chunks.map((c) => c.tokenId)).toEqual(a.tokens);
    for (const c of chunks) expect(c.logprob).toBeLessThanOrEqual(0);
  });

  test('abort ends the stream with finishReason abort and frees the state', async () => {
    const before = memory()[device === 'cpu' ? 'cpu' : 'cuda:0'].tensors;
    const ac = new AbortController();
    const it = model.generate([1, 2, 3], { maxTokens: 100, signal: ac.signal, seed: 7 });
    let n = 0;
    let r = await it.next();
    while (!r.done) {
      if (++n === 3) ac.abort();
      r = await it.next();
    }
    expect(r.value.finishReason).toBe('abort');
    // the scheduler may have produced a token or two ahead of the consumer before seeing the abort
    expect(r.value.tokens.length).toBeGreaterThanOrEqual(3);
    expect(r.value.tokens.length).toBeLessThan(10);
    expect(memory()[device === 'cpu' ? 'cpu' : 'cuda:0'].tensors).toBeLessThanOrEqual(before);
  });

  test('bad options and prompts are coded errors', async () => {
    await expect(model.complete([1], { maxTokens: 0 })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/maxTokens/) });
    await expect(model.complete([1], { temperature: NaN })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/temperature/) });
    await expect(model.complete([1], { topP: 0 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(model.complete([], {})).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/empty prompt/) });
    await expect(model.complete([S.V], {})).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(model.complete('text', {})).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/no tokenizer/) });
  });
});
