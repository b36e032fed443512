// Commands that generate text accept only language models from loadModel's union.
import { MambakitError } from '../errors';
import type { Model } from './load';
import { MambaLM } from './mamba';

/** The model as a language model, or E_ARG naming what it is (e.g. an image classifier). */
export function asLanguageModel(model: Model, dir: string): MambaLM {
  if (model instanceof MambaLM) return model;
  throw new MambakitError('E_ARG', `${dir}: is a ${model.constructor.name}, not a language model (use \`mambakit classify\` for image classifiers)`);
}
