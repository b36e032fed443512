// The path a user takes: `npm run prebuild` puts the addon into prebuilds/, `npm pack` ships it, and
// `npm install` with install scripts disabled (npm 11's default for dependencies) must still give a
// working package. Runs in a temporary copy so the tree under test is not rebuilt mid-run.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('prebuild → npm pack → install with --ignore-scripts → load and run an op', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-pack-'));
  try {
    // 1. a copy of the tracked sources (what a fresh clone has), sharing node_modules
    const src = path.join(tmp, 'src');
    const files = sh('git', ['ls-files', '--cached', '--others', '--exclude-standard'], ROOT).split('\n').filter(Boolean);
    for (const f of files) {
      if (!fs.existsSync(path.join(ROOT, f))) continue;
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(src, f));
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
    // 2. the prebuilt addon (CPU-only here to keep the test short; releases build it with CUDA)
    sh('npm', ['run', 'prebuild'], src, { MAMBAKIT_CUDA: '0' });
    const pre = path.join(src, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(fs.readdirSync(pre).some((f) => f.endsWith('.node'))).toBe(true);
    // 3. the tarball
    const tgz = sh('npm', ['pack', '--silent', '--pack-destination', tmp], src).trim().split('\n').pop() as string;
    // 4. a user's project, install scripts disabled
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', path.join(tmp, tgz)], app);
    expect(fs.existsSync(path.join(app, 'node_modules', 'mambakit', 'build'))).toBe(false); // nothing was compiled
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
    const cli = sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'mambakit'), 'info'], app);
    expect(cli).toMatch(/^mambakit 0\.\d+\.\d+/);
    // the main job runs from the installed package alone (no test helpers, no repository files)
    const bench = sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'mambakit'), 'bench', '--size', 'tiny', '--configs', 'dense,moe-8,mom-2', '--rounds', '1'], app);
    expect(bench).toMatch(/Mixture-of-Mamba, 2 modalities/);
    expect(fs.existsSync(path.join(app, 'mambakit-bench.json')) && fs.existsSync(path.join(app, 'mambakit-bench.svg'))).toBe(true);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 600000);
