// Tokenizer: a small but real GPT-2/NeoX-style byte-level BPE tokenizer.json written to a temp dir.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tokenizer, loadTokenizer } from '../lib/tokenizer';
import { BYTE, EOS, MERGES, SP, byteLevelTokenizerJson } from './helpers/tokenizer-fixture';

/** A sentencepiece-style (Metaspace "▁") BPE whose decoder strips the leading space of the first token. */
function metaspaceTokenizerJson(): Record<string, unknown> {
  const chars = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', '!'];
  const vocab: Record<string, number> = { '<unk>': 0 };
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  const merges: Array<[string, string]> = [['▁', 'h'], ['▁h', 'e'], ['l', 'l'], ['▁he', 'll'], ['▁hell', 'o'], ['▁', 'w'], ['o', 'r'], ['▁w', 'or'], ['▁wor', 'l'], ['▁worl', 'd']];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: null,
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

let tmp: string;
const dirs: Record<string, string> = {};

function makeDir(name: string, files: Record<string, string>): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d);
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  dirs[name] = d;
  return d;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-tok-'));
  makeDir('plain', { 'tokenizer.json': JSON.stringify(byteLevelTokenizerJson()) });
  makeDir('withcfg', {
    'tokenizer.json': JSON.stringify(byteLevelTokenizerJson()),
    'tokenizer_config.json': JSON.stringify({
      add_bos_token: true,
      bos_token: EOS,
      eos_token: { __type: 'AddedToken', content: EOS, lstrip: false, normalized: true, rstrip: false, single_word: false },
      tokenizer_class: 'GPTNeoXTokenizer',
    }),
  });
  makeDir('none', { 'config.json': '{}' });
  makeDir('corrupt', { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": {' });
  makeDir('notatokenizer', { 'tokenizer.json': '[1, 2, 3]' });
  makeDir('badcfg', { 'tokenizer.json': JSON.stringify(byteLevelTokenizerJson()), 'tokenizer_config.json': '{ nope' });
  makeDir('metaspace', { 'tokenizer.json': JSON.stringify(metaspaceTokenizerJson()) });
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function load(name: string): Promise<Tokenizer> {
  const tok = await loadTokenizer(dirs[name]);
  if (tok === null) throw new Error(`no tokenizer in ${name}`);
  return tok;
}

/** Every piece a stream decoder emits for `ids`, flush last. */
function stream(tok: Tokenizer, ids: readonly number[], context?: readonly number[]): string[] {
  const dec = tok.streamDecoder(context === undefined ? {} : { context });
  const pieces = ids.map((id) => dec.push(id));
  pieces.push(dec.flush());
  return pieces;
}

describe('byte-level BPE tokenizer.json', () => {
  test('vocabulary size and merges', async () => {
    const tok = await load('plain');
    expect(tok.vocabSize).toBe(256 + MERGES.length + 1);
    const ids = tok.encode('hello world');
    expect(ids).toEqual([256 + 3, 256 + 8]); // "hello", "Ġworld"
    expect(tok.encode('hell')).toEqual([256 + 2]);
    expect(tok.decode(ids)).toBe('hello world');
  });

  test('ASCII round trip', async () => {
    const tok = await load('plain');
    for (const text of ['', 'hello', 'hello world', 'Hello, World!\n\tThe quick brown fox: 3.14 (x) ok?', '  leading and trailing  ']) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  test('multi-byte characters split into byte tokens and round trip', async () => {
    const tok = await load('plain');
    expect(tok.encode('é')).toEqual([0xc3, 0xa9]);
    expect(tok.encode('漢字')).toHaveLength(6);
    expect(tok.encode('🤖')).toEqual([0xf0, 0x9f, 0xa4, 0x96]);
    for (const text of ['café', '漢字', '🤖', 'hello 🤖 world, café 漢字 — ok 👍🏽!']) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    // A lone prefix of a multi-byte character decodes to U+FFFD.
    expect(tok.decode([0xf0, 0x9f])).toContain('\uFFFD');
  });

  test('decode rejects ids outside the vocabulary', async () => {
    const tok = await load('plain');
    expect(() => tok.decode([tok.vocabSize])).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => tok.decode([-1])).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => tok.decode([1.5])).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => tok.streamDecoder().push(100000)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
  });

  test('stream decoder never emits half a character and reproduces decode()', async () => {
    const tok = await load('plain');
    for (const text of ['hello 🤖 world', '🤖🤖 café 漢字 hello world 👍🏽', 'é', '漢']) {
      const ids = tok.encode(text);
      const pieces = stream(tok, ids);
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
      expect(pieces.join('')).toBe(tok.decode(ids));
      expect(pieces.join('')).toBe(text);
    }
    // The emoji's four byte tokens: nothing for the first three, the whole character on the fourth.
    const pieces = stream(tok, tok.encode('a🤖'));
    expect(pieces).toEqual(['a', '', '', '', '🤖', '']);
  });

  test('stream decoder with the prompt as context, and flush of an incomplete character', async () => {
    const tok = await load('plain');
    const prompt = tok.encode('hello');
    const gen = tok.encode(' world 🤖');
    const pieces = stream(tok, gen, prompt);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe(' world 🤖');

    // Generation stopped mid-character: flush hands out what is there.
    const dec = tok.streamDecoder();
    expect(dec.push(tok.encode('h')[0])).toBe('h');
    expect(dec.push(0xf0)).toBe('');
    expect(dec.push(0x9f)).toBe('');
    expect(dec.flush()).toContain('\uFFFD');
    expect(dec.flush()).toBe('');
  });

  test('special tokens: eos/bos from tokenizer_config.json, add_bos_token', async () => {
    const plain = await load('plain');
    expect(plain.eosTokenId).toBeNull();
    expect(plain.bosTokenId).toBeNull();
    expect(plain.encode('hello')).toEqual([256 + 3]);

    const tok = await load('withcfg');
    const eos = 256 + MERGES.length;
    expect(tok.eosTokenId).toBe(eos);
    expect(tok.bosTokenId).toBe(eos);
    expect(tok.encode('hello')).toEqual([eos, 256 + 3]);
    expect(tok.encode(`hello${EOS}`)).toEqual([eos, 256 + 3, eos]);
    expect(tok.decode([eos, 256 + 3, eos])).toBe(`${EOS}hello${EOS}`);
    expect(tok.decode([eos, 256 + 3, eos], { skipSpecialTokens: true })).toBe('hello');
    expect(stream(tok, [256 + 3, eos], undefined).join('')).toBe(`hello${EOS}`);
    expect(stream(tok, [256 + 3, eos, 0xf0, 0x9f, 0xa4, 0x96]).join('')).toBe(`hello${EOS}🤖`);
  });
});

describe('sentencepiece-style "▁" decoding', () => {
  test('streaming keeps the spaces that decoding a token alone would strip', async () => {
    const tok = await load('metaspace');
    const ids = tok.encode('hello world');
    expect(ids).toHaveLength(2);
    expect(tok.decode(ids)).toBe('hello world');
    expect(tok.decode([ids[1]])).toBe('world'); // the leading "▁" of a first token is stripped
    const pieces = stream(tok, ids);
    expect(pieces.join('')).toBe('hello world');
    expect(pieces[1]).toBe(' world');
    // Continuing after a prompt: the first generated token keeps its space.
    expect(stream(tok, [ids[1]], [ids[0]]).join('')).toBe(' world');
  });
});

describe('loadTokenizer', () => {
  test('no tokenizer.json → null', async () => {
    await expect(loadTokenizer(dirs.none)).resolves.toBeNull();
    await expect(loadTokenizer(path.join(tmp, 'does-not-exist'))).resolves.toBeNull();
  });

  test('corrupt or invalid files → E_FORMAT naming the file', async () => {
    await expect(loadTokenizer(dirs.corrupt)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining(path.join(dirs.corrupt, 'tokenizer.json')) });
    await expect(loadTokenizer(dirs.notatokenizer)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining('tokenizer.json') });
    await expect(loadTokenizer(dirs.badcfg)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining(path.join(dirs.badcfg, 'tokenizer_config.json')) });
  });

  test('an unsupported model type → E_FORMAT', async () => {
    const spec = byteLevelTokenizerJson();
    const d = makeDir('unsupported', { 'tokenizer.json': JSON.stringify({ ...spec, model: { type: 'Nonsense' } }) });
    await expect(loadTokenizer(d)).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining('tokenizer.json') });
  });
});
