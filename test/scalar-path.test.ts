// The portable (non-AVX2) GEMM, scan, attention and representation-editor paths are what a baseline x86-64 CPU runs. The path is chosen once per
// process, so run those suites again in a child jest with MAMBAKIT_FORCE_SCALAR=1 (and, on CPUs with
// AVX512-BF16, with MAMBAKIT_NO_AVX512BF16=1 for the AVX2 bf16 GEMM).
import { execFileSync } from 'child_process';
import * as path from 'path';

import { info } from '../lib';

const ROOT = path.join(__dirname, '..');

test('MAMBAKIT_FORCE_SCALAR=1: the GEMM, Mamba, sparse, attention and reft kernel suites pass on the portable paths', () => {
  if (process.env.MAMBAKIT_FORCE_SCALAR === '1') return; // already the child
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  const out = execFileSync(process.execPath, [jest, '--ci', '--testPathPattern', 'test/ops/(gemm|ssm|sparse|attention|reft).test.ts'], {
    cwd: ROOT, env: { ...process.env, MAMBAKIT_FORCE_SCALAR: '1' }, encoding: 'utf8', stdio: 'pipe',
  });
  void out; // execFileSync throws (and the test fails) when the child suite fails
}, 600000);

test('MAMBAKIT_NO_AVX512BF16=1: the GEMM and sparse suites pass on the AVX2 bf16 path too', () => {
  if (process.env.MAMBAKIT_FORCE_SCALAR === '1' || process.env.MAMBAKIT_NO_AVX512BF16 === '1') return; // a child
  if (info().bf16Gemm !== 'avx512bf16') return; // this CPU has no AVX512-BF16 path: the main run covers AVX2
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  execFileSync(process.execPath, [jest, '--ci', '--testPathPattern', 'test/ops/(gemm|sparse).test.ts'], {
    cwd: ROOT, env: { ...process.env, MAMBAKIT_NO_AVX512BF16: '1' }, encoding: 'utf8', stdio: 'pipe',
  });
}, 600000);
