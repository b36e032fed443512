// `mambakit diffuse --model DIR [options] "prompt"`: LLaDA / MMaDA masked-diffusion generation, with a
// progress bar over the denoising steps on stderr; the text on stdout.
import { parseArgs } from 'util';

import type { DiffusionCache, Remasking } from '../diffusion/options';
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { loadDiffusionModel } from '../models/load';
import type { Device } from '../tensor';
import { bar, num } from './generate';

export const DIFFUSE_USAGE = `usage: mambakit diffuse --model DIR [options] "prompt"
  --device cpu|cuda|cuda:N (cpu)  --dtype f32|bf16|f16 (f32)
  --gen-length N (128)  --block-length N (gen length)  --steps N (gen length)  --remasking low_confidence|random
  --temperature T (0)  --cfg-scale S (0)  --cache none|prefix|dual (none)  --threshold P (off)  --seed S
  --show-steps   (print each step's partly unmasked text on stderr)`;

function progress(done: number, total: number, nfe: number): void {
  if (!process.stderr.isTTY) return;
  const w = 30, f = total > 0 ? Math.min(1, done / total) : 1;
  process.stderr.write(`\rdenoising [${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] ${done}/${total} tokens, ${nfe} forward passes`);
}

export async function cmdDiffuse(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      model: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' },
      'gen-length': { type: 'string' }, 'block-length': { type: 'string' }, steps: { type: 'string' },
      remasking: { type: 'string' }, temperature: { type: 'string' }, 'cfg-scale': { type: 'string' },
      cache: { type: 'string' }, threshold: { type: 'string' }, seed: { type: 'string' }, 'show-steps': { type: 'boolean' },
    },
  });
  if (!values.model || positionals.length !== 1) throw new MambakitError('E_ARG', DIFFUSE_USAGE);
  const model = await loadDiffusionModel(values.model, {
    device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType, onProgress: bar,
  });
  try {
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const opts = {
      genLength: num(values['gen-length'], 'gen-length'), blockLength: num(values['block-length'], 'block-length'),
      steps: num(values.steps, 'steps'), remasking: values.remasking as Remasking | undefined,
      temperature: num(values.temperature, 'temperature'), cfgScale: num(values['cfg-scale'], 'cfg-scale'),
      cache: values.cache as DiffusionCache | undefined, threshold: num(values.threshold, 'threshold'), seed: num(values.seed, 'seed'),
      signal: ac.signal,
    };
    const it = model.steps([positionals[0]], opts);
    for (;;) {
      const s = await it.next();
      if (s.done) {
        if (process.stderr.isTTY) process.stderr.write('\n');
        const [o] = s.value;
        process.stdout.write(`${o.text ?? o.tokens.join(' ')}\n`);
        process.stderr.write(`[${o.finishReason}: ${o.usage.promptTokens} prompt + ${o.usage.completionTokens} generated tokens, ${o.nfe} forward passes]\n`);
        return;
      }
      const ids = s.value.ids[0];
      progress(ids.filter((id) => id !== model.maskId).length, ids.length, s.value.nfe);
      if (values['show-steps'] && model.tokenizer)
        process.stderr.write(`\n${ids.map((id) => (id === model.maskId ? '▯' : model.tokenizer!.decode([id]))).join('')}\n`);
    }
  } finally {
    model.dispose();
  }
}
