#!/usr/bin/env node
// The release build, run by `npm pack` / `npm publish` (the prepack script) and by `npm run prebuild`:
// the addon with CUDA kernels for every supported GPU, built as `npm install` builds it in a clone
// (scripts/build-native.js, cmake-js), stripped into prebuilds/linux-x64/ where node-gyp-build finds it.
// npm 11 runs no install script of a dependency, so this file is what users get; it refuses to produce
// a package without the CUDA kernels, and checks the binary before it is shipped:
//   - every .cu file's fat binary holds real code for sm_80, sm_86, sm_89, sm_90 and PTX compute_90;
//   - the CUDA runtime is linked statically (no libcudart / libcuda dependency: loads without a driver);
//   - info() of the binary itself reports the same architectures;
//   - at most 60 MB.
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { inspect } = require('./elf-cuda');

const root = path.join(__dirname, '..');
const REQUIRED = ['sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'];
const MAX_BYTES = 60 * 1024 * 1024;
const OUT_DIR = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const OUT = path.join(OUT_DIR, 'mambakit.napi.node');

function fail(msg) {
  console.error(`mambakit prebuild: ${msg}`);
  process.exit(1);
}

/** Problems with a built addon as a release binary ([] when it is fine). */
function check(file) {
  const problems = [];
  const { bytes, needed, fatbins } = inspect(file);
  if (bytes > MAX_BYTES) problems.push(`${(bytes / 2 ** 20).toFixed(1)} MB, over the 60 MB limit`);
  const dynamic = needed.filter((lib) => /^libcuda(rt)?\.so/.test(lib));
  if (dynamic.length) problems.push(`links ${dynamic.join(', ')} dynamically (must load without a CUDA install)`);
  if (fatbins.length === 0) problems.push('holds no CUDA code (.nv_fatbin missing)');
  fatbins.forEach((entries, i) => {
    const missing = REQUIRED.filter((a) => !entries.includes(a));
    if (missing.length) problems.push(`fat binary ${i} lacks ${missing.join(', ')} (has ${entries.join(', ')})`);
  });
  // the binary's own account of itself, in a fresh process (a driver is not needed to load it)
  const r = spawnSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(file)}).info().cuda))`], { encoding: 'utf8' });
  if (r.status !== 0) problems.push(`does not load: ${r.stderr.trim()}`);
  else {
    const cuda = JSON.parse(r.stdout);
    if (!cuda.compiled || REQUIRED.some((a) => !cuda.archs.includes(a))) problems.push(`info() reports CUDA ${JSON.stringify(cuda)}`);
  }
  return problems;
}

function nvccFound() {
  const home = process.env.CUDA_HOME || '/usr/local/cuda';
  for (const nvcc of ['nvcc', path.join(home, 'bin', 'nvcc')]) {
    try {
      execFileSync(nvcc, ['--version'], { stdio: 'ignore' });
      return true;
    } catch { /* try the next */ }
  }
  return false;
}

function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`releases are built on linux-x64 (this is ${process.platform}-${process.arch})`);
  if (!nvccFound()) fail('nvcc not found: the published package must carry the CUDA kernels (install the CUDA toolkit, or set CUDA_HOME)');
  // The release configuration, whatever the developer's shell narrows for faster local builds.
  const env = { ...process.env };
  for (const k of ['MAMBAKIT_CUDA', 'MAMBAKIT_CUDA_ARCHS', 'MAMBAKIT_CUDA_EMU', 'MAMBAKIT_SANITIZE']) delete env[k];
  const out = 'build-release';
  const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js'), '--out', out], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) fail(`the build failed (exit ${r.status})`);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const f of fs.readdirSync(OUT_DIR)) if (f.endsWith('.node')) fs.rmSync(path.join(OUT_DIR, f));
  fs.copyFileSync(path.join(root, out, 'Release', 'mambakit.node'), OUT);
  execFileSync('strip', ['--strip-unneeded', OUT]);
  const problems = check(OUT);
  if (problems.length) {
    fs.rmSync(OUT);
    fail(`${path.relative(root, OUT)} is not a release binary:\n  ${problems.join('\n  ')}`);
  }
  const { bytes, fatbins } = inspect(OUT);
  console.log(`mambakit prebuild: ${path.relative(root, OUT)}, ${(bytes / 2 ** 20).toFixed(1)} MB, ${fatbins.length} CUDA fat binaries with ${REQUIRED.join(' ')}`);
}

module.exports = { check, REQUIRED };

if (require.main === module) main();
