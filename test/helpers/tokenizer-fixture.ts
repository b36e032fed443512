// A small but real GPT-2/NeoX-style byte-level BPE tokenizer.json (256 byte symbols, a few merges,
// an EOS special token), for tests that need text in and out.
/** GPT-2's bytes_to_unicode: every byte gets a printable character ("Ġ" is the space, 0x20). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
  }
  return map;
}

export const BYTE = bytesToUnicode();
export const SP = BYTE[0x20]; // "Ġ"
export const MERGES: Array<[string, string]> = [
  ['h', 'e'],
  ['l', 'l'],
  ['he', 'll'],
  ['hell', 'o'],
  [SP, 'w'],
  ['o', 'r'],
  [SP + 'w', 'or'],
  [SP + 'wor', 'l'],
  [SP + 'worl', 'd'],
];
export const EOS = '<|endoftext|>';

export function byteLevelTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BYTE.forEach((ch, b) => (vocab[ch] = b));
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
  const eosId = Object.keys(vocab).length;
  vocab[EOS] = eosId;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eosId, content: EOS, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
}

