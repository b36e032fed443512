// The path a user takes: `npm pack` runs the release build (prepack: scripts/prebuild.js, the addon
// with CUDA kernels for sm_80-sm_90 + PTX) into prebuilds/, the tarball ships it, and `npm install`
// with install scripts disabled (npm 11's default for dependencies) must still give a working package
// whose binary holds the CUDA kernels and runs its CPU path on a machine without a driver. Runs in a
// temporary copy so the tree under test is not rebuilt mid-run.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { inspect } = require('../scripts/elf-cuda') as { inspect(file: string): { bytes: number; needed: string[]; fatbins: string[][] } };
const RELEASE_ARCHS = ['sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'];

function nvccFound(): boolean {
  try {
    execFileSync(process.env.CUDA_HOME ? path.join(process.env.CUDA_HOME, 'bin', 'nvcc') : 'nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A copy of the tracked sources (what a fresh clone has), sharing node_modules. */
function copyTree(tmp: string): string {
  const src = path.join(tmp, 'src');
  const files = sh('git', ['ls-files', '--cached', '--others', '--exclude-standard'], ROOT).split('\n').filter(Boolean);
  for (const f of files) {
    if (!fs.existsSync(path.join(ROOT, f))) continue;
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(src, f));
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  return src;
}

// Without nvcc there is no release binary to make: npm pack must refuse rather than ship a CPU-only
// one. nvcc is hidden from the build (PATH without it, CUDA_HOME elsewhere; node and npm linked in).
test('without nvcc, npm pack refuses to make a package', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-pack-'));
  try {
    const src = copyTree(tmp);
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(fs.realpathSync(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim()), path.join(bin, 'npm'));
    const dirs = (process.env.PATH ?? '').split(':').filter((d) => d && !fs.existsSync(path.join(d, 'nvcc')));
    const env = { PATH: [bin, ...dirs].join(':'), CUDA_HOME: path.join(tmp, 'no-cuda') };
    expect(() => sh('npm', ['pack', '--silent', '--pack-destination', tmp], src, env)).toThrow(/nvcc not found: the published package must carry the CUDA kernels/);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tgz'))).toEqual([]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 120000);

(nvccFound() ? test : test.skip)('npm pack (release build with CUDA) → install with --ignore-scripts → CUDA kernels present, CPU path and CLI run', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-pack-'));
  try {
    const src = copyTree(tmp);
    // 1. the tarball; prepack builds the release addon, whatever this shell narrows for dev builds
    const tgz = sh('npm', ['pack', '--silent', '--pack-destination', tmp], src, { MAMBAKIT_CUDA: '0', MAMBAKIT_CUDA_ARCHS: '80-real' })
      .trim().split('\n').pop() as string;
    expect(fs.statSync(path.join(tmp, tgz)).size).toBeLessThan(60 * 2 ** 20);
    // 2. a user's project, install scripts disabled
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', path.join(tmp, tgz)], app);
    expect(fs.existsSync(path.join(app, 'node_modules', 'mambakit', 'build'))).toBe(false); // nothing was compiled
    // 3. the installed binary holds every release architecture in every .cu file's fat binary, and
    //    needs no CUDA library from the system
    const pre = path.join(app, 'node_modules', 'mambakit', 'prebuilds', `${process.platform}-${process.arch}`);
    const bins = fs.readdirSync(pre).filter((f) => f.endsWith('.node'));
    expect(bins).toHaveLength(1);
    const bin = inspect(path.join(pre, bins[0]));
    expect(bin.bytes).toBeLessThanOrEqual(60 * 2 ** 20);
    expect(bin.fatbins.length).toBe(fs.readdirSync(path.join(ROOT, 'csrc', 'cuda')).filter((f) => f.endsWith('.cu')).length);
    for (const entries of bin.fatbins) expect(entries).toEqual(expect.arrayContaining(RELEASE_ARCHS));
    expect(bin.needed.filter((l) => /^libcuda/.test(l))).toEqual([]);
    const script = `
      const mk = require('mambakit');
      (async () => {
        const x = mk.Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
        const w = mk.Tensor.from([1, 0, -1, 2, 2, 2], [2, 3], { dtype: 'bf16' });
        const y = await mk.ops.gemm(x, w);
        console.log(JSON.stringify(Array.from(await y.data())));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = sh(process.execPath, ['-e', script], app);
    expect(JSON.parse(out)).toEqual([-2, 12, -2, 30]);
    // 4. info() of the installed package names the kernels and, here, why CUDA is unused
    const cli = sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'mambakit'), 'info'], app);
    expect(cli).toMatch(/^mambakit 0\.\d+\.\d+/);
    expect(cli).toContain('CUDA kernels: sm_80 sm_86 sm_89 sm_90 + PTX compute_90; CUDA runtime');
    const json = JSON.parse(sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'mambakit'), 'info', '--json'], app));
    expect(json.cuda.archs).toEqual(RELEASE_ARCHS);
    expect(json.cuda.status === 'ok').toBe(json.gpus.length > 0);
    if (json.gpus.length === 0) expect(cli).toMatch(/CUDA in use: no: (no-driver|no-device|driver-too-old): /);
    // the main job runs from the installed package alone (no test helpers, no repository files)
    const bench = sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'mambakit'), 'bench', '--size', 'tiny', '--configs', 'dense,moe-8,mom-2', '--rounds', '1'], app);
    expect(bench).toMatch(/Mixture-of-Mamba, 2 modalities/);
    expect(fs.existsSync(path.join(app, 'mambakit-bench.json')) && fs.existsSync(path.join(app, 'mambakit-bench.svg'))).toBe(true);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 600000);
