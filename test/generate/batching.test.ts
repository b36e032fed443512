// Continuous batching: what a request generates does not depend on what else is running; more
// requests than slots wait their turn; aborted requests free their slots without disturbing others.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { GenerateResult, MambaLM, loadLanguageModel } from '../../lib';
import { DEVICES } from '../helpers/backends';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { randInt } from '../helpers/random';

const S: MambaShape = { D: 32, L: 2, V: 64, N: 8, expand: 2, K: 4 };
let tmp: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-batch-'));
  await writeMambaCheckpoint(tmp, S, randomMambaWeights(S));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(DEVICES)('continuous batching on %s', (device) => {
  let model: MambaLM;
  beforeAll(async () => { model = await loadLanguageModel(tmp, { device }); });
  afterAll(() => model.dispose());

  const prompts = Array.from({ length: 32 }, (_, i) => Array.from(randInt(2 + (i % 7), S.V)));

  test('greedy and seeded outputs are identical alone and in a batch of 32', async () => {
    const opts = (i: number) => (i % 2 === 0 ? { temperature: 0, maxTokens: 10 } : { temperature: 6, topP: 0.98, seed: 1000 + i, maxTokens: 10 });
    const alone: GenerateResult[] = [];
    for (let i = 0; i < prompts.length; ++i) alone.push(await model.complete(prompts[i], opts(i)));
    const together = await Promise.all(prompts.map((p, i) => model.complete(p, opts(i))));
    for (let i = 0; i < prompts.length; ++i) expect(together[i].tokens).toEqual(alone[i].tokens);
    expect(new Set(alone.map((r) => r.tokens.join())).size).toBeGreaterThan(1); // not all the same
    expect(model.load).toEqual({ running: 0, waiting: 0, freeSlots: 32 });
  });

  test('bf16 weights: greedy and seeded outputs are identical alone and in a batch of 32', async () => {
    // batched steps take the bf16 GEMM paths for many rows (on AVX512-BF16 CPUs: x rounded to bf16),
    // a lone request the one-row path: the results must still not depend on the company
    const m16 = await loadLanguageModel(tmp, { device, dtype: 'bf16' });
    try {
      const opts = (i: number) => (i % 2 === 0 ? { temperature: 0, maxTokens: 10 } : { temperature: 6, topP: 0.98, seed: 1000 + i, maxTokens: 10 });
      const alone: GenerateResult[] = [];
      for (let i = 0; i < prompts.length; ++i) alone.push(await m16.complete(prompts[i], opts(i)));
      const together = await Promise.all(prompts.map((p, i) => m16.complete(p, opts(i))));
      for (let i = 0; i < prompts.length; ++i) expect(together[i].tokens).toEqual(alone[i].tokens);
    } finally {
      m16.dispose();
    }
  });

  test('more requests than slots queue up; aborting some frees their slots and leaves the rest intact', async () => {
    model.configureBatching({ maxBatch: 4 });
    const ref = await Promise.all(prompts.slice(0, 10).map((p) => model.complete(p, { temperature: 0, maxTokens: 8 })));
    const acs = prompts.slice(0, 10).map(() => new AbortController());
    const runs = prompts.slice(0, 10).map((p, i) => model.complete(p, { temperature: 0, maxTokens: 8, signal: acs[i].signal }));
    expect(model.load.running + model.load.waiting).toBeGreaterThan(0);
    for (const i of [1, 4, 7]) acs[i].abort();
    const out = await Promise.all(runs);
    for (let i = 0; i < 10; ++i) {
      if ([1, 4, 7].includes(i)) {
        expect(out[i].finishReason).toBe('abort');
        expect(ref[i].tokens.slice(0, out[i].tokens.length)).toEqual(out[i].tokens); // a prefix of the full answer
      } else {
        expect(out[i].tokens).toEqual(ref[i].tokens);
      }
    }
    expect(model.load).toEqual({ running: 0, waiting: 0, freeSlots: 4 });
  });

  test('chunked admission: with one prefill per step, running requests keep decoding while a burst is admitted', async () => {
    model.configureBatching({ maxBatch: 8, maxPrefillsPerStep: 1 });
    const ref = await Promise.all(prompts.slice(0, 8).map((p) => model.complete(p, { temperature: 0, maxTokens: 6 })));
    // a request that is already running sees a token between each of the 7 admissions that follow
    const first = model.generate(prompts[0], { temperature: 0, maxTokens: 12 });
    const firstTokens: number[] = [(await first.next()).value.tokenId];
    const rest = Promise.all(prompts.slice(1, 8).map((p) => model.complete(p, { temperature: 0, maxTokens: 6 })));
    let waitingSeen = 0;
    for (;;) {
      const r = await first.next();
      if (r.done) break;
      firstTokens.push(r.value.tokenId);
      waitingSeen = Math.max(waitingSeen, model.load.waiting);
    }
    expect(waitingSeen).toBeGreaterThan(0); // admissions were spread over steps
    expect(firstTokens.slice(0, 6)).toEqual(ref[0].tokens);
    (await rest).forEach((r, i) => expect(r.tokens).toEqual(ref[i + 1].tokens));
    expect(() => model.configureBatching({ maxPrefillsPerStep: 0 })).toThrow(/maxPrefillsPerStep/);
    model.configureBatching({ maxBatch: 32 });
  });

  test('a consumer that stops pulling frees its slot', async () => {
    model.configureBatching({ maxBatch: 2 });
    for await (const c of model.generate([1, 2, 3], { maxTokens: 50, seed: 1 })) {
      void c;
      break;
    }
    const r = await model.complete([4, 5], { temperature: 0, maxTokens: 3 });
    expect(r.tokens).toHaveLength(3);
    await new Promise((res) => setTimeout(res, 50));
    expect(model.load).toEqual({ running: 0, waiting: 0, freeSlots: 2 });
  });
});
