#!/usr/bin/env node
// Installs llama.cpp (node-llama-cpp with its prebuilt linux-x64 CPU binary) into tools/llama-cpp on
// demand. It is the independent reference for test/models/llama-cpp.test.ts and scripts/bench-mamba.ts,
// and stays out of mambakit's own dependencies: node-llama-cpp's optional CUDA/Vulkan variants weigh
// ~700 MB, so the install omits optional packages and runs no install scripts (nothing is built or
// downloaded beyond the npm tarballs).
//   node scripts/llama-cpp-setup.js          installs when missing, prints where and how big
//   require('./scripts/llama-cpp-setup.js').ensureLlamaCpp()  → { dir, entry, version, installed }
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const toolsDir = path.resolve(__dirname, '..', 'tools', 'llama-cpp');
const manifest = require(path.join(toolsDir, 'package.json'));
const wanted = manifest.dependencies['node-llama-cpp'];
const entry = path.join(toolsDir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const binPkg = path.join(toolsDir, 'node_modules', '@node-llama-cpp', 'linux-x64', 'package.json');
const llamaPkg = path.join(toolsDir, 'node_modules', 'node-llama-cpp', 'package.json');

function installedVersion() {
  try {
    const a = JSON.parse(fs.readFileSync(llamaPkg, 'utf8')).version;
    const b = JSON.parse(fs.readFileSync(binPkg, 'utf8')).version;
    return a === b && fs.existsSync(entry) ? a : null;
  } catch {
    return null;
  }
}

function dirBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

/** Makes sure tools/llama-cpp holds node-llama-cpp at the pinned version; throws a clear error if not. */
function ensureLlamaCpp({ quiet = false } = {}) {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(`llama.cpp reference: only the prebuilt linux-x64 CPU binary is set up (this is ${process.platform}-${process.arch})`);
  const have = installedVersion();
  if (have === wanted) return { dir: toolsDir, entry, version: have, installed: false };
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const common = ['--prefix', toolsDir, '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'];
  const run = (args) => {
    if (!quiet) console.error(`llama.cpp reference: installing node-llama-cpp ${wanted} into ${toolsDir} (npm ${args.join(' ')})`);
    const r = spawnSync(npm, args, { cwd: toolsDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60 * 1000 });
    return { args, r, out: `${r.stdout || ''}${r.stderr || ''}` };
  };
  let res = run(['ci', ...common]);
  // npm ci refuses a lockfile that lacks some of node-llama-cpp's optional platform packages (npm
  // leaves out the ones a registry does not serve, e.g. win/mac binaries behind a filtering mirror).
  // Those are never installed here anyway, so fall back to npm install pinned by the same lockfile,
  // without rewriting it.
  if (!res.r.error && res.r.status !== 0 && /EUSAGE|in sync|Missing: .* from lock file/.test(res.out))
    res = run(['install', '--no-save', ...common]);
  const { args, r, out } = res;
  if (r.error || r.status !== 0) {
    const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|network|getaddrinfo|socket hang up/i.test(out);
    throw new Error(
      `llama.cpp reference: installing node-llama-cpp ${wanted} into tools/llama-cpp failed` +
      (offline ? ' — the npm registry is not reachable (no network?). This check needs network access once, to fetch node-llama-cpp and its prebuilt CPU binary (about 80 MB once installed).' : '') +
      `\n  command: npm ${args.join(' ')}\n  ${r.error ? r.error.message : `exit status ${r.status}`}\n${out.split('\n').slice(-25).join('\n')}`,
    );
  }
  const now = installedVersion();
  if (now !== wanted) throw new Error(`llama.cpp reference: after the install, tools/llama-cpp has node-llama-cpp ${now}, expected ${wanted}`);
  return { dir: toolsDir, entry, version: now, installed: true };
}

module.exports = { toolsDir, entry, wanted, ensureLlamaCpp, installedVersion, dirBytes };

if (require.main === module) {
  try {
    const r = ensureLlamaCpp();
    const mb = dirBytes(path.join(toolsDir, 'node_modules')) / 2 ** 20;
    console.log(`node-llama-cpp ${r.version} ${r.installed ? 'installed' : 'already present'} in ${toolsDir} (node_modules ${mb.toFixed(0)} MiB)`);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
