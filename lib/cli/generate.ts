// `mambakit generate --model DIR [--image FILE] [options] "prompt"`: streams generated text to the terminal,
// with a progress bar on stderr while the weights load. A vision-language model (mamba_vlm) takes --image.
import { parseArgs } from 'util';

import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import type { GenerateChunk, GenerateOptions, GenerateResult } from '../generate/request';
import { loadLanguageModel, loadVisionLanguageModel, modelKindOf } from '../models/load';
import type { Device } from '../tensor';

export const GENERATE_USAGE = `usage: mambakit generate --model DIR [options] "prompt"
  --device cpu|cuda|cuda:N   (default cpu)        --dtype f32|bf16|f16 (default f32)
  --image FILE   (a vision-language model: the image goes at the prompt's <image>, or first)
  --max-tokens N (128)  --temperature T (0.8)  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --seed S  --stop STRING (repeatable)`;

export function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new MambakitError('E_ARG', `--${name} must be a number, got '${v}'`);
  return n;
}

export function bar(done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const w = 30;
  const f = total > 0 ? done / total : 1;
  process.stderr.write(`\rloading [${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] ${(100 * f).toFixed(0)}% ` +
    `${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`);
  if (done >= total) process.stderr.write('\n');
}

export async function cmdGenerate(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      model: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' },
      'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
      'top-p': { type: 'string' }, 'min-p': { type: 'string' }, 'repetition-penalty': { type: 'string' },
      seed: { type: 'string' }, stop: { type: 'string', multiple: true }, image: { type: 'string' },
    },
  });
  if (!values.model || positionals.length !== 1) throw new MambakitError('E_ARG', GENERATE_USAGE);
  const load = { device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType, onProgress: bar };
  const image = values.image;
  const vlm = (await modelKindOf(values.model)) === 'vlm';
  if (image !== undefined && !vlm)
    throw new MambakitError('E_ARG', `--image: ${values.model} is not a vision-language model (config.json model_type "mamba_vlm")`);
  const model = vlm ? await loadVisionLanguageModel(values.model, load) : await loadLanguageModel(values.model, load);
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const generate = (o: GenerateOptions): AsyncGenerator<GenerateChunk, GenerateResult> =>
    model.kind === 'vlm' ? model.generate({ image, prompt: positionals[0] }, o) : model.generate(positionals[0], o);
  const it = generate({
    maxTokens: num(values['max-tokens'], 'max-tokens') ?? 128,
    temperature: num(values.temperature, 'temperature') ?? 0.8,
    topK: num(values['top-k'], 'top-k'), topP: num(values['top-p'], 'top-p'), minP: num(values['min-p'], 'min-p'),
    repetitionPenalty: num(values['repetition-penalty'], 'repetition-penalty'), seed: num(values.seed, 'seed'),
    stop: values.stop, signal: ac.signal,
  });
  let r = await it.next();
  while (!r.done) {
    process.stdout.write(r.value.text);
    r = await it.next();
  }
  process.stdout.write('\n');
  const { finishReason, usage } = r.value;
  process.stderr.write(`[${finishReason}: ${usage.promptTokens} prompt + ${usage.completionTokens} generated tokens]\n`);
  model.dispose();
}
