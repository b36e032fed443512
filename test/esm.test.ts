// An ESM consumer of the package, as a user's project has it: `import { … } from 'mambakit'` resolved
// through node_modules (a symlink to this checkout) to the compiled CommonJS in dist/. The named imports
// must be visible to Node's CJS interop (cjs-module-lexer), and the types must resolve under
// moduleResolution node16 and bundler with strict settings. Then the compiled consumer runs: an eager op
// on the CPU and info().
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

// dist/ as `npm run build:ts` makes it, rebuilt only when a source is newer (other suites read it too)
function ensureDist(): void {
  const out = path.join(ROOT, 'dist', 'lib', 'index.js');
  const built = fs.existsSync(out) ? fs.statSync(out).mtimeMs : 0;
  const newest = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const p = path.join(dir, e.name);
    return Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
  }, 0);
  if (newest(path.join(ROOT, 'lib')) > built) execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
}

const CONSUMER = `
import { MambakitError, Tensor, info, loadModel, ops } from 'mambakit';
import type { GenerateOptions, LanguageModel, RuntimeInfo, ServeOptions } from 'mambakit';

const opts: GenerateOptions = { maxTokens: 4, temperature: 0, topLogprobs: 2 };
const serve: ServeOptions = { apiKeys: ['k'], log: 'info', headersTimeoutMs: 1000 };
const load: (dir: string) => Promise<unknown> = loadModel;
export function usesModel(m: LanguageModel): Promise<unknown> { return m.complete('hi', opts); }

const a = Tensor.from(new Float32Array([1, 2, 3]), [3]);
const b = await ops.add(a, a);
const sum: number[] = Array.from((await b.data()) as Float32Array);
a.dispose();
b.dispose();
const rt: RuntimeInfo = info();
let coded = '';
try {
  Tensor.from(new Float32Array([1, 2]), [3]);
} catch (e) {
  if (e instanceof MambakitError) coded = e.code;
}
console.log(JSON.stringify({ sum, info: typeof rt === 'object' && rt !== null, coded, load: typeof load, serve: serve.apiKeys?.length }));
`;

let dir: string;
beforeAll(() => {
  ensureDist();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-esm-'));
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'mambakit'), 'dir');
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'esm-consumer', version: '1.0.0', private: true, type: 'module' }));
  fs.writeFileSync(path.join(dir, 'index.ts'), CONSUMER);
  const base = { strict: true, target: 'ES2022', lib: ['ES2022'], types: ['node'], skipLibCheck: true, outDir: 'out' };
  fs.writeFileSync(path.join(dir, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' }, files: ['index.ts'] }));
  fs.writeFileSync(path.join(dir, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler', noEmit: true }, files: ['index.ts'] }));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const tsc = (project: string): string => {
  try {
    return execFileSync(process.execPath, [TSC, '-p', project, '--traceResolution'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    throw new Error(`tsc -p ${project} failed:\n${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`);
  }
};

test.each(['node16', 'bundler'])('the types resolve and check (strict) under moduleResolution %s', (mode) => {
  const trace = tsc(`tsconfig.${mode}.json`);
  expect(trace).toMatch(/Module name 'mambakit' was successfully resolved to '[^']*dist\/lib\/index\.d\.ts'/);
});

test('compiled by tsc (node16), the ESM consumer runs on the CPU', () => {
  tsc('tsconfig.node16.json');
  const out = JSON.parse(execFileSync(process.execPath, [path.join(dir, 'out', 'index.js')], { cwd: dir, encoding: 'utf8' }));
  expect(out).toEqual({ sum: [2, 4, 6], info: true, coded: expect.stringMatching(/^E_/), load: 'function', serve: 1 });
});

test('a plain .mjs file sees every named export', () => {
  fs.writeFileSync(path.join(dir, 'names.mjs'), `
import * as ns from 'mambakit';
import { createRequire } from 'module';
const cjs = createRequire(import.meta.url)('mambakit');
const missing = Object.keys(cjs).filter((k) => k !== '__esModule' && !(k in ns));
console.log(JSON.stringify({ missing, loadModel: typeof ns.loadModel, def: ns.default === cjs }));
`);
  const out = JSON.parse(execFileSync(process.execPath, [path.join(dir, 'names.mjs')], { cwd: dir, encoding: 'utf8' }));
  expect(out).toEqual({ missing: [], loadModel: 'function', def: true });
});
