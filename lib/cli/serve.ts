// `mambakit serve --model DIR --port 8080`: the OpenAI-style completions server over one model.
import * as path from 'path';
import { parseArgs } from 'util';

import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { loadModel } from '../models/load';
import { createServer } from '../server/server';
import type { Device } from '../tensor';

export const SERVE_USAGE = `usage: mambakit serve --model DIR (a language or diffusion LM) [--port 8080] [--host 127.0.0.1] [--device cpu|cuda]
  [--dtype f32|bf16|f16] [--max-batch 32] [--max-queue 64] [--max-prompt-tokens 4096]`;

export async function cmdServe(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, device: { type: 'string' },
      dtype: { type: 'string' }, 'max-batch': { type: 'string' }, 'max-queue': { type: 'string' }, 'max-prompt-tokens': { type: 'string' },
    },
  });
  if (!values.model) throw new MambakitError('E_ARG', SERVE_USAGE);
  const int = (v: string | undefined, d: number, name: string): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new MambakitError('E_ARG', `--${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
  const model = await loadModel(values.model, { device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType });
  if (model.kind === 'classifier') {
    model.dispose();
    throw new MambakitError('E_ARG', `${values.model} holds an image classifier: use \`mambakit classify\``);
  }
  const app = createServer(model, {
    modelName: path.basename(path.resolve(values.model)),
    maxBatch: int(values['max-batch'], 32, 'max-batch'), maxQueue: int(values['max-queue'], 64, 'max-queue'),
    maxPromptTokens: int(values['max-prompt-tokens'], 4096, 'max-prompt-tokens'),
  });
  const address = await app.listen({ port: int(values.port, 8080, 'port'), host: values.host ?? '127.0.0.1' });
  process.stderr.write(`mambakit serving ${values.model} at ${address} (POST /v1/completions, GET /health)\n`);
  const stop = (): void => { void app.close().then(() => { model.dispose(); process.exit(0); }); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
