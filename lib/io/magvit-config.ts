// MAGVIT-v2 image tokenizer config.json and checkpoint layout (showlab/magvitv2, the tokenizer MMaDA
// loads with MAGVITv2.from_pretrained; architecture from Gen-Verse/MMaDA models/modeling_magvitv2.py
// and models/common_modules.py).
//
// The published config names only the class ({"_class_name": "MAGVITv2", …}): MAGVITv2.__init__ takes
// no arguments and builds VQGANEncoder(), VQGANDecoder() and LFQuantizer() with their defaults, which
// are the defaults here. mambakit also reads explicit `encoder` / `decoder` objects (ch, ch_mult,
// num_res_blocks, attn_resolutions, resolution, z_channels) and `num_groups` (GroupNorm groups, 32 in
// common_modules.Normalize), so that small checkpoints of the same layout can be built for tests.
import { MambakitError } from '../errors';
import type { Checkpoint } from './safetensors';
import { isRecord } from './safetensors';

export interface MagvitPartConfig {
  ch: number;
  chMult: number[];
  numResBlocks: number[];
  attnResolutions: number[];
  /** The nominal resolution the reference tracks to place AttnBlocks (not the input size). */
  resolution: number;
  zChannels: number;
  /** Per level: whether its ResnetBlocks are followed by AttnBlocks (curr_res ∈ attn_resolutions). */
  attn: boolean[];
}

export interface MagvitConfig {
  encoder: MagvitPartConfig;
  decoder: MagvitPartConfig;
  numGroups: number;
  /** LFQ bits (= z_channels, LFQuantizer's codebook_dim 13): 2^bits codes. */
  codebookBits: number;
  codebookSize: number;
  /** The encoder's downsampling factor 2^(levels − 1) (16): pixels H, W must be multiples of it. */
  downsample: number;
  /** The decoder's upsampling factor (16). */
  upsample: number;
}

/** VQGANEncoder's defaults (modeling_magvitv2.py). */
export const MAGVIT_ENCODER_DEFAULTS = { ch: 128, ch_mult: [1, 2, 2, 4, 4], num_res_blocks: [4, 3, 4, 3, 4], attn_resolutions: [5], resolution: 256, z_channels: 13 } as const;
/** VQGANDecoder's defaults (modeling_magvitv2.py). */
export const MAGVIT_DECODER_DEFAULTS = { ch: 128, ch_mult: [1, 1, 2, 2, 4], num_res_blocks: [4, 4, 3, 4, 3], attn_resolutions: [5], resolution: 256, z_channels: 13 } as const;

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);

function parsePart(v: unknown, dflt: typeof MAGVIT_ENCODER_DEFAULTS | typeof MAGVIT_DECODER_DEFAULTS, file: string, what: 'encoder' | 'decoder'): MagvitPartConfig {
  if (v !== undefined && !isRecord(v)) throw fail(`${file}: ${what} must be an object`);
  const o = (v ?? {}) as Record<string, unknown>;
  const int = (key: string, lo: number, hi: number, d: number): number => {
    const x = o[key] ?? d;
    if (!Number.isInteger(x) || (x as number) < lo || (x as number) > hi) throw fail(`${file}: ${what}.${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(o[key])}`);
    return x as number;
  };
  const ints = (key: string, lo: number, d: readonly number[]): number[] => {
    const x = o[key] ?? d;
    if (!Array.isArray(x) || !x.every((e) => Number.isInteger(e) && e >= lo)) throw fail(`${file}: ${what}.${key} must be a list of integers >= ${lo}, got ${JSON.stringify(o[key])}`);
    return [...(x as number[])];
  };
  const ch = int('ch', 1, 65536, dflt.ch), zChannels = int('z_channels', 1, 30, dflt.z_channels), resolution = int('resolution', 1, 1 << 20, dflt.resolution);
  const chMult = ints('ch_mult', 1, dflt.ch_mult), numResBlocks = ints('num_res_blocks', 0, dflt.num_res_blocks), attnResolutions = ints('attn_resolutions', 0, dflt.attn_resolutions);
  if (chMult.length < 1 || chMult.length > 16 || numResBlocks.length !== chMult.length)
    throw fail(`${file}: ${what}.ch_mult and num_res_blocks must have the same length, 1..16, got ${JSON.stringify(chMult)} / ${JSON.stringify(numResBlocks)}`);
  if (o.double_z === true) throw fail(`${file}: ${what}.double_z = true is not supported (MAGVIT-v2's LFQ takes z_channels latents)`);
  if (o.dropout !== undefined && o.dropout !== 0) throw fail(`${file}: ${what}.dropout must be 0 (inference)`);
  const L = chMult.length;
  // curr_res as the reference tracks it: the encoder starts at `resolution` and halves after each
  // level but the last; the decoder starts at resolution / 2^(L-1) at its last level and doubles.
  const attn = new Array<boolean>(L).fill(false);
  if (what === 'encoder') {
    let res = resolution;
    for (let i = 0; i < L; ++i) {
      attn[i] = attnResolutions.includes(res);
      if (i !== L - 1) res = Math.floor(res / 2);
    }
  } else {
    let res = Math.floor(resolution / 2 ** (L - 1));
    for (let i = L - 1; i >= 0; --i) {
      attn[i] = attnResolutions.includes(res);
      if (i !== 0) res *= 2;
    }
  }
  return { ch, chMult, numResBlocks, attnResolutions, resolution, zChannels, attn };
}

/** Reads the tokenizer's config.json: `_class_name` "MAGVITv2" (as published) or model_type "magvitv2". */
export function parseMagvitConfig(json: unknown, file: string): MagvitConfig {
  if (!isRecord(json)) throw fail(`${file}: config must be a JSON object`);
  if (json._class_name !== 'MAGVITv2' && json.model_type !== 'magvitv2')
    throw fail(`${file}: not a MAGVIT-v2 tokenizer config (expected "_class_name": "MAGVITv2" or "model_type": "magvitv2", got ${JSON.stringify(json._class_name ?? json.model_type)})`);
  const encoder = parsePart(json.encoder, MAGVIT_ENCODER_DEFAULTS, file, 'encoder');
  const decoder = parsePart(json.decoder, MAGVIT_DECODER_DEFAULTS, file, 'decoder');
  if (encoder.zChannels !== decoder.zChannels) throw fail(`${file}: encoder.z_channels ${encoder.zChannels} != decoder.z_channels ${decoder.zChannels}`);
  const g = json.num_groups ?? 32;
  if (!Number.isInteger(g) || (g as number) < 1) throw fail(`${file}: num_groups must be a positive integer, got ${JSON.stringify(json.num_groups)}`);
  const numGroups = g as number;
  const bits = json.codebook_dim ?? encoder.zChannels;
  if (bits !== encoder.zChannels) throw fail(`${file}: codebook_dim ${JSON.stringify(bits)} must equal z_channels ${encoder.zChannels} (LFQ quantizes each latent channel to one bit)`);
  for (const [what, p] of [['encoder', encoder], ['decoder', decoder]] as const)
    for (const m of [1, ...p.chMult])
      if ((p.ch * m) % numGroups !== 0) throw fail(`${file}: ${what} has a GroupNorm over ${p.ch * m} channels, not a multiple of num_groups ${numGroups}`);
  return {
    encoder, decoder, numGroups, codebookBits: encoder.zChannels, codebookSize: 2 ** encoder.zChannels,
    downsample: 2 ** (encoder.chMult.length - 1), upsample: 2 ** (decoder.chMult.length - 1),
  };
}

export interface MagvitTensor {
  name: string;
  /** As torch stores it: convs [Co, Ci, k, k], norms [C]. */
  shape: number[];
}

/** Every tensor of MAGVITv2's state dict (the encoder and decoder parameters; the quantizer's buffers are optional), in model order. */
export function expectedMagvitTensors(cfg: MagvitConfig): MagvitTensor[] {
  const out: MagvitTensor[] = [];
  const add = (name: string, ...shape: number[]): void => void out.push({ name, shape });
  const norm = (p: string, C: number): void => (add(`${p}.weight`, C), add(`${p}.bias`, C));
  const conv = (p: string, ci: number, co: number, k: number): void => (add(`${p}.weight`, co, ci, k, k), add(`${p}.bias`, co));
  const resnet = (p: string, ci: number, co: number): void => {
    norm(`${p}.norm1`, ci), conv(`${p}.conv1`, ci, co, 3), norm(`${p}.norm2`, co), conv(`${p}.conv2`, co, co, 3);
    if (ci !== co) conv(`${p}.nin_shortcut`, ci, co, 1);
  };
  const attn = (p: string, C: number): void => {
    norm(`${p}.norm`, C);
    for (const n of ['q', 'k', 'v', 'proj_out']) conv(`${p}.${n}`, C, C, 1);
  };
  const mid = (p: string, C: number): void => (resnet(`${p}.mid.block_1`, C, C), attn(`${p}.mid.attn_1`, C), resnet(`${p}.mid.block_2`, C, C));
  const e = cfg.encoder, d = cfg.decoder, z = e.zChannels;
  conv('encoder.conv_in', 3, e.ch, 3);
  let cin = e.ch;
  e.chMult.forEach((m, i) => {
    const cout = e.ch * m;
    for (let j = 0; j < e.numResBlocks[i]; ++j) {
      resnet(`encoder.down.${i}.block.${j}`, cin, cout);
      cin = cout;
      if (e.attn[i]) attn(`encoder.down.${i}.attn.${j}`, cin);
    }
    if (i !== e.chMult.length - 1) conv(`encoder.down.${i}.downsample.conv`, cin, cin, 3);
  });
  mid('encoder', cin);
  norm('encoder.norm_out', cin), conv('encoder.conv_out', cin, z, 3), conv('encoder.quant_conv', z, z, 1);
  const L = d.chMult.length;
  cin = d.ch * d.chMult[L - 1];
  conv('decoder.conv_in', z, cin, 3);
  mid('decoder', cin);
  for (let i = L - 1; i >= 0; --i) {
    const cout = d.ch * d.chMult[i];
    for (let j = 0; j < d.numResBlocks[i]; ++j) {
      resnet(`decoder.up.${i}.block.${j}`, cin, cout);
      cin = cout;
      if (d.attn[i]) attn(`decoder.up.${i}.attn.${j}`, cin);
    }
    if (i !== 0) conv(`decoder.up.${i}.upsample.conv`, cin, cin, 3);
  }
  norm('decoder.norm_out', cin), conv('decoder.conv_out', cin, 3, 3), conv('decoder.post_quant_conv', z, z, 1);
  return out;
}

/** LFQuantizer's registered buffers: saved in the state dict, derived from codebook_dim (checked when present). */
export const magvitBuffers = (cfg: MagvitConfig): MagvitTensor[] => [
  { name: 'quantize.embedding', shape: [cfg.codebookSize, cfg.codebookBits] },
  { name: 'quantize.power_vals', shape: [cfg.codebookBits] },
];

const dims = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Every parameter present with its shape and a float dtype, the buffers (optional) shaped right, nothing else (E_FORMAT). */
export function validateMagvitCheckpoint(cfg: MagvitConfig, ckpt: Checkpoint): void {
  const problems: string[] = [];
  const expected = expectedMagvitTensors(cfg);
  const buffers = magvitBuffers(cfg);
  const known = new Set([...expected, ...buffers].map((t) => t.name));
  const what = `encoder ch ${cfg.encoder.ch} × [${cfg.encoder.chMult}], decoder ch ${cfg.decoder.ch} × [${cfg.decoder.chMult}], z ${cfg.codebookBits}`;
  for (const t of expected) {
    if (!ckpt.has(t.name)) {
      problems.push(`${ckpt.dir}: tensor '${t.name}' is missing (expected ${dims(t.shape)})`);
      continue;
    }
    const found = ckpt.get(t.name);
    if (dims(found.shape) !== dims(t.shape)) problems.push(`${found.file}: tensor '${t.name}' has shape ${dims(found.shape)}, expected ${dims(t.shape)} (${what})`);
    else if (found.dtype === 'I32' || found.dtype === 'I64') problems.push(`${found.file}: tensor '${t.name}' is ${found.dtype}, expected a float dtype`);
  }
  for (const t of buffers)
    if (ckpt.has(t.name) && dims(ckpt.get(t.name).shape) !== dims(t.shape))
      problems.push(`${ckpt.get(t.name).file}: tensor '${t.name}' has shape ${dims(ckpt.get(t.name).shape)}, expected ${dims(t.shape)} (codebook_dim ${cfg.codebookBits})`);
  for (const t of ckpt.list()) if (!known.has(t.name)) problems.push(`${t.file}: unexpected tensor '${t.name}' ${dims(t.shape)} (${what})`);
  if (problems.length > 0) throw fail(problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''));
}
