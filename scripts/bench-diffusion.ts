// LLaDA masked-diffusion sampling speed: the exact sampler (every step reruns the whole sequence, as the
// reference) side by side with Fast-dLLM's prefix cache, dual cache and threshold commit, in one run on
// one random-weight checkpoint of a small LLaDA shape; plus bidirectional attention GFLOP/s at sequence
// 1024 against this machine's GEMM rate in the same dtype.
//   node dist/scripts/bench-diffusion.js [--d 1024] [--layers 8] [--heads 16] [--vocab 32000] [--prompt 32]
//        [--gen 256] [--block 32] [--steps 256] [--threshold 0.9] [--dtype bf16] [--device cpu] [--batch 1]
//        [--modes exact,prefix,dual,threshold,dual+threshold] [--head-scale 1] [--cache bench/.cache]
//        [--sections sampling,attention,t2i] [--out bench/results/diffusion-cpu.json]
// t2i (MMaDA, issue 14): seconds per 512×512 image at 15 MaskGIT steps with and without guidance on a small
// random backbone (--t2i-d 512, --t2i-layers 4; MMaDA's vocabulary: 134656 rows, tied) and the published
// MAGVIT-v2 architecture's encode / decode images/s at 512×512 (random weights). Sections not run keep their
// previous results in the output file.
// Random weights: the predictions are arbitrary tokens, so only the times and the NFE mean anything; the
// threshold modes commit as many tokens per step as the model is confident about, which for random weights
// depends on the head's scale (--head-scale multiplies it; 1 = logit std ≈ 3, nearly never confident).
import * as fs from 'fs';
import * as path from 'path';

import { LladaLM, Tensor, loadModel, ops } from '../lib';
import type { Device, WeightDType } from '../lib';
import type { DiffusionCache } from '../lib/diffusion/options';
import { addon } from '../lib/native';
import { LladaShape, randomLladaWeights, writeLladaCheckpoint } from '../test/helpers/llada-ckpt';
import { randomMagvitWeights, writeMagvitCheckpoint } from '../test/helpers/magvit-ckpt';
import { parseMagvitConfig } from '../lib/io/magvit-config';
import { arg, machine, median, writeResults } from './bench-util';

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

interface Mode { name: string; cache: DiffusionCache; threshold?: number }

async function checkpoint(cache: string, s: LladaShape, headScale: number): Promise<string> {
  const dir = path.join(cache, `llada-d${s.D}-l${s.L}-h${s.H}-v${s.V}-${s.dtype}-hs${headScale}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    const w = randomLladaWeights(s, Math.random);
    const head = w['model.transformer.ff_out.weight'];
    for (let i = 0; i < head.length; ++i) head[i] *= headScale;
    await writeLladaCheckpoint(dir, { ...s, tokenizer: false }, w);
  }
  return dir;
}

// Seconds of one call of `fn`, the median of `reps` after a warm-up.
async function timeIt(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const t: number[] = [];
  for (let r = 0; r < reps; ++r) {
    const t0 = now();
    await fn();
    t.push(now() - t0);
  }
  return median(t);
}

// Attention at sequence T with the model's heads vs a GEMM of the same FLOP class (x [T, D] · W [D, D]ᵀ).
async function attentionVsGemm(device: Device, T: number, H: number, hd: number, dtype: WeightDType) {
  const D = H * hd;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const q = Tensor.from(rnd(T * D), [1, T, H, hd], { device }), k = Tensor.from(rnd(T * D), [1, T, H, hd], { device });
  const v = Tensor.from(rnd(T * D), [1, T, H, hd], { device });
  const x = Tensor.from(rnd(T * D), [T, D], { device });
  const w32 = Tensor.from(rnd(D * D), [D, D], { device });
  const w = dtype === 'f32' ? w32 : await ops.cast(w32, dtype);
  const attnS = await timeIt(async () => (await ops.attention(q, k, v)).dispose(), 5);
  const gemmS = await timeIt(async () => (await ops.gemm(x, w)).dispose(), 5);
  [q, k, v, x, w32, w].forEach((t) => t.dispose());
  const attnFlops = 4 * T * T * hd * H, gemmFlops = 2 * T * D * D;
  return {
    seq: T, heads: H, headDim: hd, kvDtype: 'f32', gemm: { M: T, N: D, K: D, weightDtype: dtype },
    attentionGflops: attnFlops / attnS / 1e9, gemmGflops: gemmFlops / gemmS / 1e9,
    ratio: (attnFlops / attnS) / (gemmFlops / gemmS),
  };
}

// MMaDA text-to-image and the tokenizer, random weights (the times are what they measure; the images are noise).
async function benchT2i(cache: string, device: Device, dtype: WeightDType) {
  const D = Number(arg('t2i-d', '512')), L = Number(arg('t2i-layers', '4')), steps = Number(arg('t2i-steps', '15'));
  const V = 134656, V_TEXT = 126464, CODES = 8192;  // MMaDA-8B's embedding rows and text vocabulary
  const lmDir = path.join(cache, `mmada-d${D}-l${L}`), vqDir = path.join(cache, 'magvitv2-published');
  if (!fs.existsSync(path.join(lmDir, 'config.json'))) {
    const s: LladaShape = { D, H: D / 64, KVH: D / 64, L, F: 3 * D, V, maskId: 126336, dtype: 'bf16', tied: true, tokenizer: false };
    await writeLladaCheckpoint(lmDir, s, randomLladaWeights(s, Math.random));
    const cfg = JSON.parse(fs.readFileSync(path.join(lmDir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(lmDir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mmada', llm_vocab_size: V_TEXT, codebook_size: CODES, num_vq_tokens: 1024, bos_token_id: 1 }));
  }
  if (!fs.existsSync(path.join(vqDir, 'config.json'))) {
    const json = { _class_name: 'MAGVITv2' };
    const cfg = parseMagvitConfig(json, 'config.json');
    await writeMagvitCheckpoint(vqDir, cfg, randomMagvitWeights(cfg), { config: json });
  }
  const model = (await loadModel(lmDir, { device, dtype, kind: 'diffusion', imageTokenizer: vqDir })) as LladaLM;
  const out: Record<string, unknown>[] = [];
  try {
    for (const guidance of [0, 1.5]) {
      const t0 = now();
      const img = await model.generateImage([1, 500, 600, 700], { steps, guidance, seed: 1, bos: 1, eos: 2 });
      const s = now() - t0;
      out.push({ what: 't2i 512×512', steps, guidance, seconds: s, forwardPasses: img.nfe, msPerForward: ((s - 0) / img.nfe) * 1e3 });
      console.log(`t2i 512×512, ${steps} steps, guidance ${guidance}: ${s.toFixed(1)} s (${img.nfe} forward passes, decode included)`);
    }
    const tok = model.imageTokenizer!;
    const px = Tensor.from(Float32Array.from({ length: 512 * 512 * 3 }, () => Math.random() * 2 - 1), [1, 512, 512, 3], { device });
    const enc = await timeIt(async () => void (await tok.encode(px)), 2);
    const codes = await tok.encode(px);
    const dec = await timeIt(async () => (await tok.decode(codes, 1, 32, 32)).dispose(), 2);
    px.dispose();
    out.push({ what: 'MAGVIT-v2 512×512 (published architecture)', encodeImagesPerSecond: 1 / enc, decodeImagesPerSecond: 1 / dec });
    console.log(`MAGVIT-v2 512×512: encode ${(1 / enc).toFixed(3)} images/s, decode ${(1 / dec).toFixed(3)} images/s`);
  } finally {
    model.dispose();
  }
  return { backbone: { dModel: D, layers: L, heads: D / 64, vocab: V, tied: true, weights: dtype }, sequence: 'text 513 + image 1026', results: out };
}

async function main(): Promise<void> {
  const D = Number(arg('d', '1024')), L = Number(arg('layers', '8')), H = Number(arg('heads', '16')), V = Number(arg('vocab', '32000'));
  const P = Number(arg('prompt', '32')), gen = Number(arg('gen', '256')), block = Number(arg('block', '32')), steps = Number(arg('steps', '256'));
  const threshold = Number(arg('threshold', '0.9')), dtype = arg('dtype', 'bf16') as WeightDType, device = arg('device', 'cpu') as Device;
  const batch = Number(arg('batch', '1')), headScale = Number(arg('head-scale', '1'));
  const all: Mode[] = [
    { name: 'exact', cache: 'none' }, { name: 'prefix', cache: 'prefix' }, { name: 'dual', cache: 'dual' },
    { name: 'threshold', cache: 'none', threshold }, { name: 'dual+threshold', cache: 'dual', threshold },
  ];
  const wanted = arg('modes', all.map((m) => m.name).join(',')).split(',');
  const modes = all.filter((m) => wanted.includes(m.name));
  const out = path.resolve(arg('out', `bench/results/diffusion-${device === 'cpu' ? 'cpu' : 'gpu'}.json`));
  const sections = arg('sections', 'sampling,attention,t2i').split(',');
  const previous: Record<string, unknown> = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : {};
  const m = machine();
  const readGBs = device === 'cpu' ? await addon.bench.streamRead(1024) : NaN;
  const fmaGflops = device === 'cpu' ? await addon.bench.fmaPeak() : NaN;
  console.log(`machine: ${m.cpu}, ${m.threads} threads, ${m.cpuFeatures}, kernels ${m.cpuKernels}, bf16 GEMM ${m.bf16Gemm}; ${m.gpus.join('; ') || 'no GPU'}`);
  if (device === 'cpu') console.log(`ceilings (measured now): streaming read ${readGBs.toFixed(1)} GB/s, f32 FMA peak ${fmaGflops.toFixed(1)} GFLOP/s`);

  const shape: LladaShape = { D, H, KVH: H, L, F: 3 * D, V, maskId: V - 1, dtype: 'bf16' };
  const cacheDir = path.resolve(arg('cache', 'bench/.cache'));
  const rows: Record<string, unknown>[] = [];
  let exactTps = NaN;
  if (sections.includes('sampling')) {
  const dir = await checkpoint(cacheDir, shape, headScale);
  const model = (await loadModel(dir, { device, dtype, kind: 'diffusion' })) as LladaLM;
  const prompts = Array.from({ length: batch }, () => Array.from({ length: P }, () => Math.floor(Math.random() * (V - 1))));
  try {
    for (const mode of modes) {
      const opts = { genLength: gen, blockLength: block, steps, cache: mode.cache, threshold: mode.threshold, seed: 1 };
      await model.generateBatch(prompts, { ...opts, genLength: block, steps: Math.max(1, steps / (gen / block)) });  // warm-up
      const t0 = now();
      const r = await model.generateBatch(prompts, opts);
      const s = now() - t0;
      const tps = (gen * batch) / s;
      if (mode.name === 'exact') exactTps = tps;
      rows.push({ mode: mode.name, cache: mode.cache, threshold: mode.threshold ?? null, seconds: s, tokensPerSecond: tps, nfe: r[0].nfe,
        msPerForward: (s / r[0].nfe) * 1e3, speedupVsExact: tps / exactTps });
      console.log(`${mode.name.padEnd(15)} ${s.toFixed(2).padStart(7)} s  ${tps.toFixed(1).padStart(7)} tokens/s  NFE ${String(r[0].nfe).padStart(4)}  ` +
        `${((s / r[0].nfe) * 1e3).toFixed(1).padStart(6)} ms/forward  ×${(tps / exactTps).toFixed(2)} vs exact`);
    }
  } finally {
    model.dispose();
  }
  }
  let attn: Awaited<ReturnType<typeof attentionVsGemm>> | null = null;
  if (sections.includes('attention')) {
    attn = await attentionVsGemm(device, 1024, H, D / H, dtype === 'bf16' ? 'f32' : dtype);
    console.log(`attention at seq 1024 (${H} heads × ${D / H}, f32): ${attn.attentionGflops.toFixed(1)} GFLOP/s; GEMM [1024×${D}]·[${D}×${D}] f32 ${attn.gemmGflops.toFixed(1)} GFLOP/s: ${(100 * attn.ratio).toFixed(0)}%`);
  }
  const t2i = sections.includes('t2i') ? await benchT2i(cacheDir, device, dtype) : null;
  const stamp = { machine: m, ceilings: device === 'cpu' ? { streamReadGBs: readGBs, fmaPeakGflops: fmaGflops } : null };
  writeResults(out, {
    ...previous,
    ...(rows.length ? {
      machine: m, ceilings: stamp.ceilings,
      model: { dModel: D, layers: L, heads: H, kvHeads: H, mlpHidden: 3 * D, vocab: V, weights: dtype, headScale, random: true },
      setting: { device, batch, promptLength: P, genLength: gen, blockLength: block, steps, threshold, reference: 'exact = LLaDA generate.py; prefix/dual/threshold = Fast-dLLM llada/generate.py' },
      sampling: rows,
    } : {}),
    ...(attn ? { attention: { ...attn, ...stamp } } : {}),
    ...(t2i ? { t2i: { ...t2i, ...stamp, reference: 'MMaDA t2i_generate (MaskGIT), MAGVIT-v2 get_code / decode_code' } } : {}),
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
