// The SVG chart of `mambakit bench`: bar panels a person can read at a glance (no dependencies).
import type { ConfigResult, ProjectionResult, VisionBlockResult } from './measure';

interface Series { name: string; color: string; values: number[] }

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

// Grouped horizontal bars: one row per category, one bar per series, value labels at the bar ends.
function barPanel(x: number, y: number, w: number, title: string, cats: string[], series: Series[], unit: string): { svg: string; h: number } {
  const labelW = 190, barH = 12, gap = 10, top = 34;
  const rowH = series.length * barH + gap;
  const h = top + cats.length * rowH + 28;
  const max = Math.max(1e-12, ...series.flatMap((s) => s.values.filter(Number.isFinite)));
  const scale = (w - labelW - 70) / max;
  const out: string[] = [`<g transform="translate(${x},${y})">`,
    `<text x="0" y="16" font-size="14" font-weight="600">${esc(title)}</text>`];
  series.forEach((s, i) => out.push(
    `<rect x="${labelW + i * 120}" y="${top - 14}" width="10" height="10" fill="${s.color}"/>`,
    `<text x="${labelW + i * 120 + 14}" y="${top - 5}" font-size="11">${esc(s.name)}</text>`));
  cats.forEach((c, ci) => {
    const ry = top + 6 + ci * rowH;
    out.push(`<text x="${labelW - 8}" y="${ry + (series.length * barH) / 2 + 4}" font-size="11" text-anchor="end">${esc(c)}</text>`);
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (!Number.isFinite(v)) return;
      const bw = Math.max(1, v * scale);
      out.push(`<rect x="${labelW}" y="${ry + si * barH}" width="${bw.toFixed(1)}" height="${barH - 2}" fill="${s.color}"/>`,
        `<text x="${(labelW + bw + 4).toFixed(1)}" y="${ry + si * barH + barH - 3}" font-size="10" fill="#333">${fmt(v)}</text>`);
    });
  });
  out.push(`<text x="${labelW}" y="${h - 8}" font-size="10" fill="#666">${esc(unit)}</text>`, '</g>');
  return { svg: out.join('\n'), h };
}

// Per-expert load as small vertical-bar histograms, the uniform share dashed.
function loadPanel(x: number, y: number, w: number, results: ConfigResult[]): { svg: string; h: number } {
  const moe = results.filter((r) => r.expertLoad && r.expertLoad.length > 0);
  if (moe.length === 0) return { svg: '', h: 0 };
  const cellH = 70, out: string[] = [`<g transform="translate(${x},${y})">`,
    '<text x="0" y="16" font-size="14" font-weight="600">Expert load during prefill (share of routed tokens; dashed: uniform)</text>'];
  moe.forEach((r, i) => {
    const load = r.expertLoad as number[];
    const total = load.reduce((a, b) => a + b, 0) || 1;
    const shares = load.map((v) => v / total);
    const maxShare = Math.max(...shares, 2 / load.length);
    const cy = 30 + i * (cellH + 22), bw = (w - 200) / load.length;
    out.push(`<text x="190" y="${cy + cellH / 2}" font-size="11" text-anchor="end">${esc(r.label)}</text>`);
    shares.forEach((sh, e) => {
      const bh = (sh / maxShare) * cellH;
      out.push(`<rect x="${(200 + e * bw).toFixed(1)}" y="${(cy + cellH - bh).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#8c6bb1"/>`);
    });
    const uy = cy + cellH - (1 / load.length / maxShare) * cellH;
    out.push(`<line x1="200" x2="${w}" y1="${uy.toFixed(1)}" y2="${uy.toFixed(1)}" stroke="#333" stroke-dasharray="4 3"/>`,
      `<text x="200" y="${cy + cellH + 14}" font-size="10" fill="#666">max/mean ${(Math.max(...shares) * load.length).toFixed(2)}</text>`);
  });
  out.push('</g>');
  return { svg: out.join('\n'), h: 30 + moe.length * (cellH + 22) };
}

/** The whole chart: speed, parameters, expert load, and the projection comparison. */
export function benchChart(title: string, subtitle: string, results: ConfigResult[], proj: ProjectionResult[], vision: VisionBlockResult | null = null): string {
  const W = 900;
  const cats = results.map((r) => r.label);
  const panels = [
    barPanel(20, 0, W - 40, 'Decode throughput', cats, [
      { name: 'batch 1', color: '#2b8cbe', values: results.map((r) => r.decodeTokensPerSec.batch1) },
      { name: 'batch 16', color: '#7bccc4', values: results.map((r) => r.decodeTokensPerSec.batch16) }], 'tokens / s (higher is better)'),
    barPanel(20, 0, W - 40, 'Prefill throughput', cats, [
      { name: 'prefill', color: '#e6550d', values: results.map((r) => r.prefillTokensPerSec) }], 'tokens / s (higher is better)'),
    barPanel(20, 0, W - 40, 'Parameters', cats, [
      { name: 'total', color: '#bdbdbd', values: results.map((r) => r.totalParams / 1e6) },
      { name: 'active per token', color: '#31a354', values: results.map((r) => r.activeParams / 1e6) }], 'millions'),
  ];
  if (proj.length > 0)
    panels.push(barPanel(20, 0, W - 40, 'Mixture-of-Mamba projections: the masked loop vs one grouped GEMM', proj.map((p) => `${p.modalities} modalities, ${p.rows} rows`), [
      { name: 'masked loop', color: '#de2d26', values: proj.map((p) => p.maskedLoopSeconds * 1e3) },
      { name: 'grouped GEMM', color: '#3182bd', values: proj.map((p) => p.groupedSeconds * 1e3) }], 'milliseconds for in/x/dt/out_proj (lower is better)'));
  if (vision)
    panels.push(barPanel(20, 0, W - 40, `One block of width ${vision.channels} on ${vision.batch} × ${vision.tokens} image tokens (MambaOut's comparison)`,
      [`gated CNN (${(vision.gatedCnn.params / 1e6).toFixed(2)} M params)`, `Mamba (${(vision.mamba.params / 1e6).toFixed(2)} M params)`], [
        { name: 'tokens / s', color: '#756bb1', values: [vision.gatedCnn.tokensPerSec, vision.mamba.tokensPerSec] }], 'tokens / s (higher is better)'));
  let y = 60;
  const body: string[] = [];
  for (const p of panels) {
    body.push(p.svg.replace('<g transform="translate(20,0)">', `<g transform="translate(20,${y})">`));
    y += p.h + 14;
  }
  const lp = loadPanel(20, y, W - 40, results);
  body.push(lp.svg);
  y += lp.h + 10;
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="26" font-size="18" font-weight="700">${esc(title)}</text>`,
    `<text x="20" y="46" font-size="11" fill="#555">${esc(subtitle)}</text>`, ...body, '</svg>'].join('\n') + '\n';
}
