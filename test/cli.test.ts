import { execFileSync } from 'child_process';
import * as path from 'path';

import { info } from '../lib';

const ROOT = path.join(__dirname, '..');

test('mambakit info prints version, CUDA, GPUs, CPU features and threads', () => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }); // the CLI runs from dist/
  const out = execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'info'], { encoding: 'utf8' });
  const i = info();
  expect(out).toContain(`mambakit ${i.version}`);
  expect(out).toContain(`CUDA compiled in: ${i.cudaCompiled ? 'yes' : 'no'}`);
  expect(out).toMatch(i.gpus.length ? /cuda:0 .+ compute \d+\.\d+/ : /GPUs: none found/);
  expect(out).toContain(`CPU features: ${i.cpuFeatures}`);
  expect(out).toContain(`CPU threads: ${i.threads}`);
  const json = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'info', '--json'], { encoding: 'utf8' }));
  expect(json.ops).toEqual(expect.arrayContaining(['gemm', 'rmsnorm', 'softmax', 'argmax']));
});

test('unknown command exits 2 with usage', () => {
  let status = 0;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'dist/lib/cli/main.js'), 'frobnicate'], { stdio: 'pipe' });
  } catch (e) {
    status = (e as { status: number }).status;
  }
  expect(status).toBe(2);
});
