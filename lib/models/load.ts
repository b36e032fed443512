// loadModel: reads config.json, picks the model family from model_type, validates and loads weights.
import * as fs from 'fs';
import * as path from 'path';

import { MambakitError } from '../errors';
import { parseMambaConfig, validateMambaCheckpoint } from '../io/mamba-config';
import { ProgressFn, isRecord, openCheckpoint } from '../io/safetensors';
import { Device } from '../tensor';
import { loadTokenizer } from '../tokenizer';
import { MambaLM, WeightDType } from './mamba';
import { MambaOutClassifier } from './mambaout';
import { parseMambaOutConfig, validateMambaOutCheckpoint } from '../io/mambaout-config';

export interface LoadModelOptions {
  device?: Device;
  /** dtype of the GEMM weights and the embedding (norms, conv, A, D, biases stay f32). Default f32. */
  dtype?: WeightDType;
  /** Called after each tensor loads with the bytes read so far and the total. */
  onProgress?: ProgressFn;
}

export type Model = MambaLM | MambaOutClassifier;

export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<Model> {
  const device = opts.device ?? 'cpu';
  const dtype = opts.dtype ?? 'f32';
  if (!['f32', 'f16', 'bf16'].includes(dtype)) throw new MambakitError('E_DTYPE', `loadModel: dtype must be f32, f16 or bf16, got '${dtype}'`);
  const cfgFile = path.join(path.resolve(dir), 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(await fs.promises.readFile(cfgFile, 'utf8'));
  } catch (e) {
    throw new MambakitError('E_FORMAT', `${cfgFile}: cannot read config: ${(e as Error).message}`);
  }
  const type = isRecord(json) ? json.model_type : undefined;
  switch (type) {
    case 'mamba':
    case 'moe_mamba':
    case 'mixture_of_mamba': {
      const cfg = parseMambaConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      const V = validateMambaCheckpoint(cfg, ckpt);
      const tokenizer = await loadTokenizer(dir);
      if (tokenizer && tokenizer.vocabSize > V)
        throw new MambakitError('E_FORMAT', `${dir}: tokenizer.json has ${tokenizer.vocabSize} tokens, the model's embedding only ${V}`);
      const model = await MambaLM.load(cfg, ckpt, V, device, dtype);
      model.tokenizer = tokenizer;
      return model;
    }
    case 'mambaout': {
      const cfg = parseMambaOutConfig(json, cfgFile);
      const ckpt = await openCheckpoint(dir, { onProgress: opts.onProgress });
      validateMambaOutCheckpoint(cfg, ckpt);
      return MambaOutClassifier.load(cfg, ckpt, device, dtype);
    }
    default:
      throw new MambakitError('E_FORMAT', `${cfgFile}: unknown model_type ${JSON.stringify(type)} (supported: "mamba", "moe_mamba", "mixture_of_mamba")`);
  }
}
