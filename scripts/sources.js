#!/usr/bin/env node
// Prints the native sources of csrc/sources.txt for one build kind, one path per line, relative to
// the repository root: `node scripts/sources.js cpu` (CPU-only) or `cuda` (with the CUDA kernels).
'use strict';
const fs = require('fs');
const path = require('path');

function sources(kind) {
  const text = fs.readFileSync(path.join(__dirname, '..', 'csrc', 'sources.txt'), 'utf8');
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(cuda|nocuda|emu):\s*(.+)$/.exec(line);
    if (!m) out.push(line);
    else if (m[1] !== 'emu' && (m[1] === 'cuda') === (kind === 'cuda')) out.push(m[2]); // emu: CMake's emulator build only
  }
  return out.map((s) => 'csrc/' + s);
}

module.exports = { sources };
if (require.main === module) process.stdout.write(sources(process.argv[2] || 'cpu').join('\n') + '\n');
