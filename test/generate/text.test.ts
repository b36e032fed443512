// Text in, text out: a random model whose vocabulary is a real byte-level BPE tokenizer.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambaLM, loadLanguageModel } from '../../lib';
import { MambaShape, randomMambaWeights, writeMambaCheckpoint } from '../helpers/mamba-ckpt';
import { EOS, MERGES, byteLevelTokenizerJson } from '../helpers/tokenizer-fixture';

const V = 256 + MERGES.length + 1; // bytes, merges, EOS
const S: MambaShape = { D: 32, L: 2, V, N: 8, expand: 2, K: 4 };
let tmp: string;
let model: MambaLM;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-text-'));
  await writeMambaCheckpoint(tmp, S, randomMambaWeights(S));
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
  fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify({ eos_token: EOS }));
  model = await loadLanguageModel(tmp);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('loadModel picks up tokenizer.json; streamed chunks add up to the decoded tokens', async () => {
  expect(model.tokenizer?.vocabSize).toBe(V);
  const tok = model.tokenizer!;
  const opts = { temperature: 3, seed: 99, maxTokens: 40 };
  let streamed = '';
  const ids: number[] = [];
  const it = model.generate('hello world', opts);
  let r = await it.next();
  while (!r.done) {
    streamed += r.value.text;
    ids.push(r.value.tokenId);
    r = await it.next();
  }
  const res = r.value;
  expect(res.usage.promptTokens).toBe(tok.encode('hello world').length);
  if (res.finishReason === 'length') {
    expect(ids).toEqual(res.tokens);
    expect(streamed).toBe(tok.decode(res.tokens));
  } else {
    expect(res.finishReason).toBe('stop'); // drew EOS
  }
  expect(streamed).toBe(res.text);
});

test('a stop string ends generation before it and is not emitted', async () => {
  const opts = { temperature: 0, maxTokens: 30 };
  const free = await model.complete('hello', opts);
  if (free.text.length < 4) return void expect(free.finishReason).toBe('stop'); // EOS came first: nothing to cut
  const stop = free.text.slice(2, 4);
  const cut = await model.complete('hello', { ...opts, stop: [stop] });
  expect(cut.finishReason).toBe('stop');
  expect(cut.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
  expect(cut.text).not.toContain(stop);
});
