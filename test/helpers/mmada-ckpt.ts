// A tiny MMaDA (LLaDA layout, model_type "mmada") with a tiny MAGVIT-v2 beside it, for the image tests:
// MMaDA's reserved ids (126084…) and mask id (126336) need the real vocabulary size; 32 codes (the tokenizer's
// 5 bits) after llm_vocab_size 126100, 4×4 image tokens (16×16 pixels at its 4× downsampling); a tokenizer.json
// (byte-level fixture + added special tokens up to vocab_size) with a bos, as MMaDA's has.
import * as fs from 'fs';
import * as path from 'path';

import { writeLladaCheckpoint } from './llada-ckpt';
import { randomMagvitWeights, smallConfig, writeMagvitCheckpoint } from './magvit-ckpt';

export async function writeTinyMmada(lm: string, vq: string): Promise<void> {
  await writeLladaCheckpoint(lm, { D: 32, H: 2, KVH: 1, L: 2, F: 48, V: 126100 + 32 + 400, maskId: 126336, dtype: 'f32', shardBytes: 1 << 30 });
  const cfg = JSON.parse(fs.readFileSync(path.join(lm, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(lm, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mmada', llm_vocab_size: 126100, codebook_size: 32, num_vq_tokens: 16 }));
  const tc = JSON.parse(fs.readFileSync(path.join(lm, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(lm, 'tokenizer_config.json'), JSON.stringify({ ...tc, bos_token: '<|reserved_300|>' }));
  const mc = smallConfig();
  await writeMagvitCheckpoint(vq, mc, randomMagvitWeights(mc));
}
