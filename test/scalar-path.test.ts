// The portable (non-AVX2) GEMM and scan paths are what a baseline x86-64 CPU runs. The path is chosen once per
// process, so run those suites again in a child jest with MAMBAKIT_FORCE_SCALAR=1.
import { execFileSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

test('MAMBAKIT_FORCE_SCALAR=1: the GEMM, Mamba and sparse kernel suites pass on the portable paths', () => {
  if (process.env.MAMBAKIT_FORCE_SCALAR === '1') return; // already the child
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  const out = execFileSync(process.execPath, [jest, '--ci', '--testPathPattern', 'test/ops/(gemm|ssm|sparse).test.ts'], {
    cwd: ROOT, env: { ...process.env, MAMBAKIT_FORCE_SCALAR: '1' }, encoding: 'utf8', stdio: 'pipe',
  });
  void out; // execFileSync throws (and the test fails) when the child suite fails
}, 600000);
