#!/usr/bin/env node
// Builds the addon with cmake-js (CUDA when nvcc is found). `--if-needed` (the install script)
// skips the build when a prebuilt binary for this platform is already in prebuilds/.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
if (process.argv.includes('--if-needed') && !process.env.MAMBAKIT_BUILD_FROM_SOURCE) {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.node'))) {
    console.log(`mambakit: using the prebuilt addon in ${path.relative(root, dir)}`);
    process.exit(0);
  }
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
// configure (always, so the CUDA switch applies even to an existing build/), then an incremental build
const flag = `--CDMAMBAKIT_CUDA=${process.env.MAMBAKIT_CUDA === '0' ? 'OFF' : 'ON'}`;
// --out DIR: another build folder (the emulator build uses build-emu/, so build/ keeps the real one)
const at = process.argv.indexOf('--out');
const out = at >= 0 ? process.argv[at + 1] : 'build';
for (const step of [['configure', '--out', out, flag], ['build', '--out', out]]) {
  const r = spawnSync(process.execPath, [cmakeJs, ...step], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}
