// Dense Mamba config.json parsing and checkpoint validation (FORMATS.md §1).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MambakitError } from '../../lib';
import { expectedMambaTensors, parseMambaConfig, validateMambaCheckpoint } from '../../lib/io/mamba-config';
import type { MambaConfig } from '../../lib/io/mamba-config';
import { openCheckpoint, writeSafetensors, writeShardedCheckpoint } from '../../lib/io/safetensors';
import type { TensorToWrite } from '../../lib/io/safetensors';
import { uniform } from '../helpers/random';

// The config.json of state-spaces/mamba-130m-hf, as transformers writes it.
const HF_130M = {
  architectures: ['MambaForCausalLM'], model_type: 'mamba', hidden_size: 768, intermediate_size: 1536, num_hidden_layers: 24,
  vocab_size: 50280, state_size: 16, expand: 2, conv_kernel: 4, time_step_rank: 48, use_bias: false, use_conv_bias: true,
  layer_norm_epsilon: 1e-5, residual_in_fp32: true, pad_vocab_size_multiple: 8, hidden_act: 'silu', torch_dtype: 'float32',
};
const TINY = { model_type: 'mamba', hidden_size: 8, num_hidden_layers: 2, vocab_size: 10, state_size: 4, expand: 2, conv_kernel: 4 };
const FILE = '/models/tiny/config.json';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-cfg-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function throwsWith(fn: () => unknown, code: string, ...patterns: (RegExp | string)[]): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MambakitError);
  expect((err as MambakitError).code).toBe(code);
  for (const p of patterns) expect((err as MambakitError).message).toMatch(p);
}

describe('parseMambaConfig', () => {
  test('the 130m config, and the defaults', () => {
    const c = parseMambaConfig(HF_130M, FILE);
    expect(c).toMatchObject({ hiddenSize: 768, numLayers: 24, vocabSize: 50280, stateSize: 16, intermediateSize: 1536, convKernel: 4,
      timeStepRank: 48, useBias: false, useConvBias: true, tieWordEmbeddings: true, layerNormEpsilon: 1e-5, residualInFp32: true, padVocabSizeMultiple: 8 });
    const t = parseMambaConfig(TINY, FILE);
    expect(t).toMatchObject({ intermediateSize: 16, timeStepRank: 1, useBias: false, useConvBias: true, tieWordEmbeddings: true, layerNormEpsilon: 1e-5, padVocabSizeMultiple: null });
    expect(parseMambaConfig({ ...HF_130M, time_step_rank: 'auto' }, FILE).timeStepRank).toBe(48); // ceil(768 / 16)
    expect(parseMambaConfig({ ...TINY, hidden_size: 17, time_step_rank: 'auto' }, FILE).timeStepRank).toBe(2);
  });

  test('unknown or missing model_type names it and the file', () => {
    throwsWith(() => parseMambaConfig({ ...TINY, model_type: 'llama' }, FILE), 'E_FORMAT', FILE, /unknown model_type "llama"/);
    const { model_type: _omit, ...noType } = TINY;
    throwsWith(() => parseMambaConfig(noType, FILE), 'E_FORMAT', FILE, /'model_type' is missing/);
    throwsWith(() => parseMambaConfig([1], FILE), 'E_FORMAT', FILE, /JSON object/);
  });

  test('missing keys and out-of-range values name the key, the file and what was found', () => {
    const { state_size: _omit, ...noState } = TINY;
    throwsWith(() => parseMambaConfig(noState, FILE), 'E_FORMAT', FILE, /'state_size' is missing/);
    throwsWith(() => parseMambaConfig({ ...TINY, hidden_size: -4 }, FILE), 'E_FORMAT', FILE, /'hidden_size' must be an integer in \[1, 65536\], found -4/);
    throwsWith(() => parseMambaConfig({ ...TINY, num_hidden_layers: 2.5 }, FILE), 'E_FORMAT', /'num_hidden_layers'.*found 2\.5/);
    throwsWith(() => parseMambaConfig({ ...TINY, vocab_size: '10' }, FILE), 'E_FORMAT', /'vocab_size'.*found "10"/);
    throwsWith(() => parseMambaConfig({ ...TINY, conv_kernel: 0 }, FILE), 'E_FORMAT', /'conv_kernel'/);
    throwsWith(() => parseMambaConfig({ ...TINY, expand: 1e9 }, FILE), 'E_FORMAT', /'expand'/);
    throwsWith(() => parseMambaConfig({ ...TINY, time_step_rank: 'big' }, FILE), 'E_FORMAT', /'time_step_rank'.*found "big"/);
    throwsWith(() => parseMambaConfig({ ...TINY, use_bias: 'no' }, FILE), 'E_FORMAT', /'use_bias' must be true or false/);
    throwsWith(() => parseMambaConfig({ ...TINY, layer_norm_epsilon: -1 }, FILE), 'E_FORMAT', /'layer_norm_epsilon'/);
    throwsWith(() => parseMambaConfig({ ...TINY, intermediate_size: 20 }, FILE), 'E_FORMAT', /'intermediate_size' is 20, but expand × hidden_size = 16/);
  });
});

describe('expectedMambaTensors', () => {
  test('names and shapes per layer (§1 table)', () => {
    const c = parseMambaConfig(HF_130M, FILE);
    const e = expectedMambaTensors(c);
    expect(e).toHaveLength(1 + 24 * 10 + 1 + 1);
    const byName = new Map(e.map((t) => [t.name, t]));
    expect(byName.get('backbone.embeddings.weight')?.shape).toEqual([50280, 768]);
    expect(byName.get('backbone.layers.23.mixer.in_proj.weight')?.shape).toEqual([3072, 768]);
    expect(byName.get('backbone.layers.0.mixer.conv1d.weight')?.shape).toEqual([1536, 1, 4]);
    expect(byName.get('backbone.layers.0.mixer.x_proj.weight')?.shape).toEqual([48 + 32, 1536]);
    expect(byName.get('backbone.layers.0.mixer.dt_proj.weight')?.shape).toEqual([1536, 48]);
    expect(byName.get('backbone.layers.0.mixer.A_log')?.shape).toEqual([1536, 16]);
    expect(byName.get('backbone.layers.0.mixer.out_proj.weight')?.shape).toEqual([768, 1536]);
    expect(byName.get('lm_head.weight')).toMatchObject({ shape: [50280, 768], optional: true });
    expect(byName.has('backbone.layers.0.mixer.in_proj.bias')).toBe(false);
    const b = expectedMambaTensors({ ...c, useBias: true, useConvBias: false, tieWordEmbeddings: false }, 50432);
    const bn = new Map(b.map((t) => [t.name, t]));
    expect(bn.get('backbone.layers.0.mixer.in_proj.bias')?.shape).toEqual([3072]);
    expect(bn.get('backbone.layers.0.mixer.out_proj.bias')?.shape).toEqual([768]);
    expect(bn.has('backbone.layers.0.mixer.conv1d.bias')).toBe(false);
    expect(bn.get('lm_head.weight')).toEqual({ name: 'lm_head.weight', shape: [50432, 768], optional: false });
  });
});

describe('validateMambaCheckpoint', () => {
  // Random tensors for every expected name; `edit` changes the set before it is written.
  async function write(cfg: MambaConfig, V: number, edit: (t: Record<string, TensorToWrite>) => void = () => {}, sharded = false): Promise<void> {
    const t: Record<string, TensorToWrite> = {};
    for (const e of expectedMambaTensors(cfg, V)) {
      if (e.optional) continue;
      t[e.name] = { dtype: 'BF16', shape: e.shape, data: uniform(e.shape.reduce((a, b) => a * b, 1)) };
    }
    edit(t);
    if (sharded) await writeShardedCheckpoint(dir, t, 1024);
    else await writeSafetensors(path.join(dir, 'model.safetensors'), t);
  }
  const tiny = parseMambaConfig(TINY, FILE);
  const single = (): string => path.join(dir, 'model.safetensors');

  test('a complete checkpoint passes; the embedding decides V (padded vocab)', async () => {
    await write(tiny, 10);
    expect(validateMambaCheckpoint(tiny, await openCheckpoint(dir))).toBe(10);
    fs.rmSync(single());
    const untied = { ...tiny, tieWordEmbeddings: false };
    await write(untied, 16);
    expect(validateMambaCheckpoint(untied, await openCheckpoint(dir))).toBe(16);
  });

  test('a tied checkpoint may keep a correctly shaped lm_head.weight', async () => {
    await write(tiny, 10, (t) => { t['lm_head.weight'] = { dtype: 'F32', shape: [10, 8], data: uniform(80) }; });
    expect(validateMambaCheckpoint(tiny, await openCheckpoint(dir))).toBe(10);
  });

  test('missing tensors name the checkpoint, the tensor and the expected shape', async () => {
    await write(tiny, 10, (t) => { delete t['backbone.layers.1.mixer.A_log']; delete t['backbone.norm_f.weight']; });
    const ck2 = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint(tiny, ck2), 'E_FORMAT', dir, /'backbone\.layers\.1\.mixer\.A_log' is missing \(expected \[16, 4\]\) \(and 1 more problems\)/);
  });

  test('a missing lm_head when untied, and a missing embedding', async () => {
    await write(tiny, 10, (t) => { delete t['backbone.embeddings.weight']; });
    const ck = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint(tiny, ck), 'E_FORMAT', dir, /'backbone\.embeddings\.weight' is missing \(expected \[10, 8\]\)/);
    fs.rmSync(single());
    await write(tiny, 10);
    const untied = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint({ ...tiny, tieWordEmbeddings: false }, untied), 'E_FORMAT', /'lm_head\.weight' is missing \(expected \[10, 8\]\)/);
  });

  test('misshapen tensors name the file, the tensor, expected and found (in whichever shard)', async () => {
    await write(tiny, 10, (t) => { t['backbone.layers.1.mixer.x_proj.weight'] = { dtype: 'F32', shape: [10, 16], data: uniform(160) }; }, true);
    const ck = await openCheckpoint(dir);
    const file = ck.get('backbone.layers.1.mixer.x_proj.weight').file;
    expect(ck.files.length).toBeGreaterThan(1);
    expect(path.basename(file)).toMatch(/^model-0000\d-of-0000\d\.safetensors$/);
    throwsWith(() => validateMambaCheckpoint(tiny, ck), 'E_FORMAT', `${file}: tensor 'backbone.layers.1.mixer.x_proj.weight' has shape [10, 16], expected [9, 16]`);
  });

  test('an embedding with the wrong width', async () => {
    await write(tiny, 10, (t) => { t['backbone.embeddings.weight'] = { dtype: 'F32', shape: [10, 6], data: uniform(60) }; });
    const c = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint(tiny, c), 'E_FORMAT', single(), /'backbone\.embeddings\.weight' has shape \[10, 6\], expected \[V, 8\]/);
  });

  test('an unexpected extra tensor names the file and the tensor', async () => {
    await write(tiny, 10, (t) => { t['backbone.layers.0.mixer.extra'] = { dtype: 'F32', shape: [3], data: uniform(3) }; });
    const c = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint(tiny, c), 'E_FORMAT', single(), /unexpected tensor 'backbone\.layers\.0\.mixer\.extra' \[3\]/);
    fs.rmSync(single());
    await write(tiny, 10, (t) => { t['backbone.layers.2.norm.weight'] = { dtype: 'F32', shape: [8], data: uniform(8) }; }); // a layer past L
    const c2 = await openCheckpoint(dir);
    throwsWith(() => validateMambaCheckpoint(tiny, c2), 'E_FORMAT', /unexpected tensor 'backbone\.layers\.2\.norm\.weight'/);
  });
});
