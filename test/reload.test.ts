// The addon must load more than once per process (jest loads it once per test file): per-load state
// lives in instance data, the executor and thread pool are shared.
import { execFileSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

test('two loads of the addon in one process both work, and their tensors do not mix', () => {
  const script = `
    const load = require(${JSON.stringify(path.join(ROOT, 'node_modules/node-gyp-build'))});
    const a = load(${JSON.stringify(ROOT)});
    const file = require.resolve(${JSON.stringify(path.join(ROOT, 'build/Release/mambakit.node'))});
    // a second, independent load of the same binary (as a new vm context or jest registry would do)
    const m = { exports: {} };
    process.dlopen(m, file);
    const b = m.exports;
    (async () => {
      const x = a.tensorFrom(new Float32Array([1, 2, 3]), 0, 0, [3], 'cpu');
      const y = b.tensorFrom(new Float32Array([4, 5, 6]), 0, 0, [3], 'cpu');
      const [sa] = await a.runOp('add', [x, x], {});
      const [sb] = await b.runOp('add', [y, y], {});
      const out = [Array.from(new Float32Array(await sa.read(false))), Array.from(new Float32Array(await sb.read(false)))];
      let mixed = 'accepted';
      try { await a.runOp('add', [x, y], {}); } catch (e) { mixed = e.code; }
      console.log(JSON.stringify({ out, mixed }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  expect(r.out).toEqual([[2, 4, 6], [8, 10, 12]]);
  expect(r.mixed).toBe('E_ARG'); // a handle from another load is not this load's tensor
});
