// `mambakit classify --model DIR [--top-k K] [--json] img1.jpg img2.png …`: the top classes of each image
// with a MambaOut classifier.
import { parseArgs } from 'util';

import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import type { ImageClassifier } from '../models/interfaces';
import { loadClassifier } from '../models/load';
import type { Device } from '../tensor';

export const CLASSIFY_USAGE = `usage: mambakit classify --model DIR [options] IMAGE...
  --device cpu|cuda|cuda:N (default cpu)  --dtype f32|bf16|f16 (default f32)  --top-k K (5)  --json`;

export async function cmdClassify(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { model: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' }, 'top-k': { type: 'string' }, json: { type: 'boolean' } },
  });
  if (!values.model || positionals.length < 1) throw new MambakitError('E_ARG', CLASSIFY_USAGE);
  const topK = values['top-k'] === undefined ? 5 : Number(values['top-k']);
  if (!Number.isInteger(topK) || topK < 1) throw new MambakitError('E_ARG', `--top-k must be a positive integer, got '${values['top-k']}'`);
  const model: ImageClassifier = await loadClassifier(values.model, { device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType });
  try {
    const results = await model.classify(positionals, { topK });
    if (values.json) {
      process.stdout.write(JSON.stringify(positionals.map((image, i) => ({ image, top: results[i] })), null, 2) + '\n');
      return;
    }
    const lines = positionals.flatMap((image, i) => [image, ...results[i].map((r) => `  ${(100 * r.probability).toFixed(2).padStart(6)}%  ${r.index.toString().padStart(4)}  ${r.label}`)]);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    model.dispose();
  }
}
