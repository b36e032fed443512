// info().cuda says why CUDA is unused: checked in child processes that see no driver, and a stand-in
// libcuda.so.1 that reports an old driver (compiled here from one C line). Only for a real CUDA build on
// a machine without a usable driver (the CI machine); a CPU-only build reports 'not-compiled'.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { info } from '../lib';

const ROOT = path.join(__dirname, '..');
const cuda = info().cuda;

// The addon the library loads, in a fresh process with `env`.
function childInfo(env: NodeJS.ProcessEnv): typeof cuda {
  const load = `const p = require('path'); const a = process.env.MAMBAKIT_ADDON ? require(p.resolve(process.env.MAMBAKIT_ADDON)) : require('node-gyp-build')(${JSON.stringify(ROOT)});`;
  const out = execFileSync(process.execPath, ['-e', `${load} process.stdout.write(JSON.stringify(a.info().cuda))`], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out) as typeof cuda;
}

test('a CPU-only build says CUDA was not compiled in; a CUDA build lists its architectures and runtime', () => {
  if (!cuda.compiled) {
    expect(cuda).toMatchObject({ status: 'not-compiled', archs: [], runtime: '', driver: '' });
    expect(cuda.reason).toMatch(/built without CUDA/);
  } else if (cuda.status !== 'emulated') {
    expect(cuda.archs.length).toBeGreaterThan(0);
    for (const a of cuda.archs) expect(a).toMatch(/^(sm|compute)_\d+[af]?$/);
    expect(cuda.runtime).toMatch(/^\d+\.\d$/);
  }
  expect(cuda.status === 'ok' || cuda.status === 'emulated').toBe(info().gpus.length > 0);
});

const noDriverHere = cuda.compiled && cuda.status === 'no-driver';
(noDriverHere ? describe : describe.skip)('a CUDA build without a usable driver', () => {
  test('no libcuda: no-driver, naming the library the loader could not find', () => {
    const c = childInfo({ LD_LIBRARY_PATH: '' });
    expect(c.status).toBe('no-driver');
    expect(c.reason).toMatch(/libcuda\.so\.1/);
    expect(c.driver).toBe('');
  });

  test('a driver for CUDA 12.2: driver-too-old, with both versions', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mk-fake-cuda-'));
    try {
      fs.writeFileSync(path.join(dir, 'fake.c'), 'int cuDriverGetVersion(int* v) { *v = 12020; return 0; }\n');
      const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'libcuda.so.1'), path.join(dir, 'fake.c')], { encoding: 'utf8' });
      expect(cc.status).toBe(0);
      const c = childInfo({ LD_LIBRARY_PATH: dir });
      expect(c.status).toBe('driver-too-old');
      expect(c.driver).toBe('12.2');
      expect(c.reason).toContain('the driver supports CUDA 12.2; this binary needs CUDA');
      expect(c.reason).toContain(`CUDA ${cuda.runtime.split('.')[0]}.0 or newer`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
