// MMaDA's mixed text/image sequences, as Gen-Verse/MMaDA training/prompting_utils.py (UniversalPrompting with
// use_reserved_token=True, the setting of its inference scripts) builds them:
//   t2i:  [iPAD]… <|t2i|> <bos> text <eos> <|soi|> image_1 … image_N <|eoi|>   (left-padded to maxTextLen + 1
//         before <|soi|>; a longer prompt is cut to maxTextLen tokens, the last one eos)
//   mmu:  <|mmu|> <|soi|> image_1 … image_N <|eoi|> question            (inference_mmu.py: the question is the
//         chat-templated user turn with the generation prompt; LLaDA's text sampler then appends the answer's masks)
// Image token id = text vocabulary size (llm_vocab_size) + code; a masked image position holds the mask id.
import { MambakitError } from '../errors';

/** MMaDA's reserved token ids (prompting_utils.py `reserved_token_mapping`). */
export const MMADA_SPECIAL_TOKENS = {
  soi: 126084, eoi: 126085, sov: 126086, eov: 126087, t2i: 126088, mmu: 126089, t2v: 126090, v2v: 126091, lvg: 126092,
  ipad: 126093, r2i: 126094,
} as const;

export interface MmadaLayout {
  /** Text vocabulary size: image code c is token llmVocabSize + c. */
  llmVocabSize: number;
  codebookSize: number;
  /** Image tokens per image (1024 for 512×512 at 16× downsampling). */
  imageTokens: number;
  /** UniversalPrompting's max_text_len (config.dataset.preprocessing.max_seq_length: 512 in MMaDA's configs). */
  maxTextLen: number;
  bos: number;
  eos: number;
  maskId: number;
  special: { soi: number; eoi: number; t2i: number; mmu: number; ipad: number };
}

export interface T2iBatch {
  /** [B, L] */
  ids: Int32Array;
  /** 1 token, 0 padding: [B, L] */
  attention: Uint8Array;
  B: number;
  L: number;
  /** First image position (after <|soi|>). */
  imageStart: number;
}

/** The text part of a t2i sequence: <|t2i|> <bos> text <eos>, left-padded with [iPAD] to maxTextLen + 1. */
function t2iText(text: readonly number[], m: MmadaLayout): { ids: number[]; pads: number } {
  const t = text.length === 0 ? [m.bos] : text[0] !== m.bos ? [m.bos, ...text] : [...text];
  let ids = [m.special.t2i, ...t, m.eos];
  const width = m.maxTextLen + 1;  // prompting_utils adds one for the task token
  if (ids.length > width) ids = [...ids.slice(0, width - 1), m.eos];
  const pads = width - ids.length;
  return { ids: [...Array<number>(pads).fill(m.special.ipad), ...ids], pads };
}

/** t2i sequences for prompts (token ids), every image position masked (or given `codes` [B][N] where known). */
export function t2iBatch(texts: readonly (readonly number[])[], m: MmadaLayout, codes?: readonly (readonly number[] | null)[]): T2iBatch {
  if (texts.length < 1) throw new MambakitError('E_ARG', 't2i: no prompts');
  const B = texts.length, N = m.imageTokens, T = m.maxTextLen + 1, L = T + N + 2;
  const ids = new Int32Array(B * L), attention = new Uint8Array(B * L);
  texts.forEach((text, b) => {
    const { ids: head, pads } = t2iText(text, m);
    ids.set(head, b * L);
    ids[b * L + T] = m.special.soi;
    const given = codes?.[b];
    for (let i = 0; i < N; ++i) {
      const c = given ? given[i] : -1;
      if (given && !(Number.isInteger(c) && c >= -1 && c < m.codebookSize))
        throw new MambakitError('E_ARG', `t2i: code ${String(c)} at image position ${i} outside the codebook [0, ${m.codebookSize})`);
      ids[b * L + T + 1 + i] = c < 0 ? m.maskId : m.llmVocabSize + c;
    }
    ids[b * L + L - 1] = m.special.eoi;
    attention.fill(1, b * L + pads, (b + 1) * L);
  });
  return { ids, attention, B, L, imageStart: T + 1 };
}

/** The mmu prompt: <|mmu|> <|soi|> image tokens <|eoi|> question ids as given (before the answer's masks). */
export function mmuPrompt(codes: readonly number[], question: readonly number[], m: MmadaLayout): number[] {
  if (codes.length !== m.imageTokens) throw new MambakitError('E_SHAPE', `mmu: ${codes.length} image codes, the model takes ${m.imageTokens}`);
  for (const c of codes)
    if (!(Number.isInteger(c) && c >= 0 && c < m.codebookSize)) throw new MambakitError('E_ARG', `mmu: code ${c} outside the codebook [0, ${m.codebookSize})`);
  return [m.special.mmu, m.special.soi, ...codes.map((c) => m.llmVocabSize + c), m.special.eoi, ...question];
}
