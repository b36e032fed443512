// `mambakit t2i` and `mambakit understand`: MMaDA text-to-image and image understanding from the terminal,
// with a progress bar over the steps on stderr. Both need the MAGVIT-v2 tokenizer's directory (--vq DIR).
import * as fs from 'fs';
import { parseArgs } from 'util';

import type { DiffusionCache } from '../diffusion/options';
import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { loadDiffusionModel } from '../models/load';
import type { Device } from '../tensor';
import { bar, num } from './generate';

export const T2I_USAGE = `usage: mambakit t2i --model DIR --vq DIR [options] "prompt" -o out.png
  --device cpu|cuda|cuda:N (cpu)  --dtype f32|bf16|f16 (f32)  --steps N (12)  --guidance G (1.5)  --temperature T (1)
  --seed S  --deterministic  --n N (images, out-1.png …)  --previews DIR (each step's decoded draws)`;
export const UNDERSTAND_USAGE = `usage: mambakit understand --model DIR --vq DIR [options] image.png "question"
  --device  --dtype  --gen-length N (128)  --block-length N  --steps N  --cache none|prefix|dual  --threshold P  --resize crop|squash`;

function stepBar(done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const w = 30, f = Math.min(1, done / total);
  process.stderr.write(`\rsampling [${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] step ${done}/${total}`);
  if (done >= total) process.stderr.write('\n');
}

const common = {
  model: { type: 'string' }, vq: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' },
} as const;

async function load(values: { model?: string; vq?: string; device?: string; dtype?: string }, usage: string) {
  if (!values.model || !values.vq) throw new MambakitError('E_ARG', usage);
  return loadDiffusionModel(values.model, {
    device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType, imageTokenizer: values.vq, onProgress: bar,
  });
}

export async function cmdT2i(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...common, out: { type: 'string', short: 'o' }, steps: { type: 'string' }, guidance: { type: 'string' }, temperature: { type: 'string' },
      seed: { type: 'string' }, deterministic: { type: 'boolean' }, n: { type: 'string' }, previews: { type: 'string' },
    },
  });
  if (positionals.length !== 1 || !values.out) throw new MambakitError('E_ARG', T2I_USAGE);
  const n = num(values.n, 'n') ?? 1;
  if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new MambakitError('E_ARG', `--n must be an integer in [1, 64], got ${values.n}`);
  const model = await load(values, T2I_USAGE);
  try {
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const steps = num(values.steps, 'steps') ?? 12;
    if (values.previews) fs.mkdirSync(values.previews, { recursive: true });
    const it = model.imageSteps(Array(n).fill(positionals[0]), {
      steps, guidance: num(values.guidance, 'guidance'), temperature: num(values.temperature, 'temperature'), seed: num(values.seed, 'seed'),
      deterministic: values.deterministic, previews: values.previews !== undefined, signal: ac.signal,
    });
    for (;;) {
      const s = await it.next();
      if (s.done) {
        const outs = n === 1 ? [values.out] : s.value.map((_, i) => values.out!.replace(/(\.png)?$/i, `-${i + 1}.png`));
        s.value.forEach((img, i) => fs.writeFileSync(outs[i], img.png));
        process.stderr.write(`[${s.value[0].finishReason}: ${outs.join(', ')}, ${s.value[0].width}×${s.value[0].height} codes, ${s.value[0].nfe} forward passes]\n`);
        return;
      }
      stepBar(s.value.step + 1, steps);
      s.value.previews?.forEach((png, i) => fs.writeFileSync(`${values.previews}/step-${String(s.value.step + 1).padStart(2, '0')}-${i + 1}.png`, png));
    }
  } finally {
    model.dispose();
  }
}

export async function cmdUnderstand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...common, 'gen-length': { type: 'string' }, 'block-length': { type: 'string' }, steps: { type: 'string' }, cache: { type: 'string' },
      threshold: { type: 'string' }, resize: { type: 'string' },
    },
  });
  if (positionals.length !== 2) throw new MambakitError('E_ARG', UNDERSTAND_USAGE);
  const resize = values.resize ?? 'crop';
  if (resize !== 'crop' && resize !== 'squash') throw new MambakitError('E_ARG', `--resize must be crop or squash, got '${resize}'`);
  const model = await load(values, UNDERSTAND_USAGE);
  try {
    const out = await model.understand(positionals[0], positionals[1], {
      genLength: num(values['gen-length'], 'gen-length'), blockLength: num(values['block-length'], 'block-length'), steps: num(values.steps, 'steps'),
      cache: values.cache as DiffusionCache | undefined, threshold: num(values.threshold, 'threshold'), resize,
    });
    process.stdout.write(`${out.text ?? out.tokens.join(' ')}\n`);
    process.stderr.write(`[${out.finishReason}: ${out.usage.promptTokens} prompt + ${out.usage.completionTokens} generated tokens, ${out.nfe} forward passes]\n`);
  } finally {
    model.dispose();
  }
}
