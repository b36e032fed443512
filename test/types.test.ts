// The public types as a user's code sees them: consumer snippets (the README's examples) compiled by
// the TypeScript compiler against the package source with strict settings, no casts anywhere. The
// un-narrowed loadModel union must NOT allow `.newState` (else this test could never fail).
import * as path from 'path';

import ts from 'typescript';

const ROOT = path.join(__dirname, '..');
const OK = path.join(ROOT, 'test', '__consumer_ok__.ts');
const BAD = path.join(ROOT, 'test', '__consumer_bad__.ts');

const SNIPPETS: Record<string, string> = {
  [OK]: `
import { createServer, loadClassifier, loadLanguageModel, loadModel, loadVisionLanguageModel } from '../lib';
import type { DiffusionLM, ImageClassifier, LanguageModel, RecurrentLM, RecurrentState, VisionLanguageModel, WeightDType } from '../lib';

export async function readme(): Promise<void> {
  const model = await loadLanguageModel('./mamba-130m-hf', { device: 'cpu', dtype: 'bf16', onProgress: (done, total) => {} });
  const logits = await model.forward([[510, 3158, 8516]]);
  const state = model.newState(2);
  const last = await model.prefill([[1, 2, 3], [4, 5, 6]], state);
  const next = await model.step([7, 8], state);
  await model.step([9], state, { slots: [1] });
  await state.zeroSlot(1);
  [logits, last, next].forEach((t) => t.dispose());
  state.dispose(); model.dispose();

  const clf = await loadClassifier('./mambaout_femto', { dtype: 'bf16' });
  const top = await clf.classify(['cat.jpg'], { topK: 5 });
  const label: string = top[0][0].label;
  clf.dispose();

  const m = await loadModel('./some-model');
  if (m.kind === 'language') m.newState(1).dispose();
  else if (m.kind === 'classifier') await m.classify('cat.jpg');
  else if (m.kind === 'diffusion') await m.generate([1, 2, 3], { genLength: 8 });
  else await m.complete({ image: 'cat.jpg', prompt: 'USER: <image> What is this? ASSISTANT:' }, { maxTokens: 8 });

  const vlm = await loadVisionLanguageModel('./mamba-vlm', { dtype: 'bf16' });
  const v: VisionLanguageModel = vlm;
  for await (const chunk of v.generate({ image: 'cat.jpg', prompt: 'Describe <image> briefly.' }, { maxTokens: 16 })) void chunk.text;
  const toks = await vlm.encodeImages(['cat.jpg']);
  const vlogits = await vlm.forward({ image: 'cat.jpg', prompt: [1, 2, 3] }, { encoderEdits: [{ after: 0, rows: [0], add: toks }] });
  const p = await vlm.prompt({ prompt: 'no image' });
  const span: [number, number] | null = p.imageSpan;
  void [span, vlm.encoderBlocks, vlm.lm.blocks, createServer(v)];
  [toks, vlogits, p.embeds].forEach((t) => t.dispose());

  const dlm = await loadModel('./llada', { kind: 'diffusion' });
  const d: DiffusionLM = dlm;
  const out = await d.generate('2 + 2 =', { genLength: 64, blockLength: 32, steps: 64, cache: 'dual', threshold: 0.9 });
  const text: string | null = out.text;
  for await (const step of d.steps(['hi'], { genLength: 32 })) void step.ids[0];
  void [text, createServer(d)];

  const lm = await loadModel('./lm', { kind: 'language' });
  const recurrent: RecurrentLM = lm;
  const s: RecurrentState = recurrent.newState(1);
  s[Symbol.dispose]();
  const generic: LanguageModel = lm;
  const app = createServer(generic, { maxBatch: 4 });
  const c: ImageClassifier = await loadModel('./clf', { kind: 'classifier' });
  const dtype: WeightDType = c.dtype;
  void [label, app, dtype, recurrent.modalityNames, recurrent.usesModalities, generic.load.freeSlots];
}
`,
  [BAD]: `
import { loadModel } from '../lib';

export async function unnarrowed(): Promise<void> {
  const m = await loadModel('./some-model');
  m.newState(1);
}
`,
};

function compile(): readonly ts.Diagnostic[] {
  const cfg = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
  const options: ts.CompilerOptions = { ...parsed.options, strict: true, noEmit: true, noUnusedLocals: true };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => f in SNIPPETS || fileExists.call(host, f);
  host.readFile = (f) => (f in SNIPPETS ? SNIPPETS[f] : readFile.call(host, f));
  host.getSourceFile = (f, lang, ...rest) =>
    f in SNIPPETS ? ts.createSourceFile(f, SNIPPETS[f], lang) : getSourceFile.call(host, f, lang, ...rest);
  return ts.getPreEmitDiagnostics(ts.createProgram([OK, BAD], options, host));
}

const show = (d: ts.Diagnostic): string =>
  `${d.file ? path.relative(ROOT, d.file.fileName) : '(global)'}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;

test('README snippets type-check without casts; the un-narrowed union has no newState', () => {
  const diags = compile();
  const bad = diags.filter((d) => d.file?.fileName === BAD);
  expect(diags.filter((d) => d.file?.fileName !== BAD).map(show)).toEqual([]);
  expect(bad.map(show)).toEqual([expect.stringMatching(/TS2339 Property 'newState' does not exist on type 'Model'|TS2339 Property 'newState' does not exist on type 'MambaOutClassifier'/)]);
}, 120000);
