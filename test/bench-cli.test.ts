// `mambakit bench` (the main job) end to end at the tiny size: every configuration measured in its
// own process, the table printed, JSON and SVG written with the numbers they claim.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { CONFIG_IDS, SIZES, accounting, benchConfig, decodeMix, tokenMix } from '../lib/bench/configs';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist/lib/cli/main.js');

test('configs match active parameters per token across dense, MoE-Mamba and Mixture-of-Mamba', () => {
  const s = SIZES.small;
  const dense = accounting(benchConfig('dense', s));
  for (const id of CONFIG_IDS) {
    const a = accounting(benchConfig(id, s));
    expect(Math.abs(a.activeParams / dense.activeParams - 1)).toBeLessThan(0.02); // routers and rounding only
    expect(a.totalParams).toBeGreaterThanOrEqual(a.activeParams);
  }
  expect(accounting(benchConfig('moe-32', s)).totalParams).toBeGreaterThan(10 * dense.totalParams);
  const mix = tokenMix(3, 512);
  expect(new Set(mix)).toEqual(new Set([0, 1, 2]));
  expect(decodeMix(3, 16).filter((m) => m === 0).length).toBe(8);
});

test('mambakit bench --size tiny writes the table, JSON and chart', () => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambakit-bench-'));
  const out = path.join(dir, 'r.json'), chart = path.join(dir, 'c.svg');
  const r = spawnSync(process.execPath, [CLI, 'bench', '--size', 'tiny', '--out', out, '--chart', chart], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/dense Mamba, 4 blocks/);
  expect(r.stdout).toMatch(/MoE-Mamba, 32 experts top-1/);
  expect(r.stdout).toMatch(/Mixture-of-Mamba, 3 modalities/);
  expect(r.stdout).toMatch(/masked loop vs grouped GEMM/);
  expect(r.stdout).toMatch(/gated CNN block \(MambaOut\)/);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  expect(j.results.map((x: { id: string }) => x.id)).toEqual([...CONFIG_IDS]);
  for (const x of j.results) {
    expect(x.prefillTokensPerSec).toBeGreaterThan(0);
    expect(x.decodeTokensPerSec.batch1).toBeGreaterThan(0);
    expect(x.peakBytes).toBeGreaterThanOrEqual(x.weightBytes);
    // one prefill of the prompt through the 2 MoE blocks of the tiny size, k choices per token
    if (x.family === 'moe') expect(x.expertLoad.reduce((a: number, b: number) => a + b, 0)).toBe(2 * SIZES.tiny.prompt * (x.id.endsWith('top2') ? 2 : 1));
  }
  // the two ways compute the same function (to bf16 precision where the bf16 GEMM rounds x)
  for (const p of j.projections) expect(p.maxAbsDiff).toBeLessThan((j.shape.dtype === 'f32' ? 1e-5 : 1e-2) * p.maxAbsOut);
  expect(j.visionBlocks.gatedCnn.tokensPerSec).toBeGreaterThan(0);
  expect(j.visionBlocks.mamba.params).toBeGreaterThan(0);
  const svg = fs.readFileSync(chart, 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('Decode throughput');
  expect(svg).toContain('Expert load');
  const bad = spawnSync(process.execPath, [CLI, 'bench', '--configs', 'dense,nope'], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/unknown config 'nope'/);
  const tpu = spawnSync(process.execPath, [CLI, 'bench', '--device', 'tpu'], { encoding: 'utf8' });
  expect(tpu.stderr).toMatch(/E_ARG: --device must be cpu, cuda or cuda:N/);
  fs.rmSync(dir, { recursive: true, force: true });
}, 120_000);
