// The portable (non-AVX2) forms of the vision kernels are what a baseline x86-64 CPU runs; the path is
// chosen once per process, so run the kernel suite again in a child jest with MAMBAKIT_FORCE_SCALAR=1.
import { execFileSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '../..');

test('MAMBAKIT_FORCE_SCALAR=1: the vision kernel suite passes on the portable paths', () => {
  if (process.env.MAMBAKIT_FORCE_SCALAR === '1') return; // already the child
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  execFileSync(process.execPath, [jest, '--ci', '--testPathPattern', 'test/vision/kernels.test.ts'], {
    cwd: ROOT, env: { ...process.env, MAMBAKIT_FORCE_SCALAR: '1' }, encoding: 'utf8', stdio: 'pipe',
  }); // throws (and the test fails) when the child suite fails
}, 300000);
