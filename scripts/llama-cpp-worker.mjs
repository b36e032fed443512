// llama.cpp (through node-llama-cpp) in a child process, driven over IPC by test/helpers/llama-cpp.ts.
// A separate process because node-llama-cpp is ESM-only (jest's CommonJS sandbox cannot import() it)
// and so that its threads and memory stay apart from mambakit's when both are measured.
// Messages: { id, cmd, ...args } → { id, ok: true, result } | { id, ok: false, error }.
//   init    { entry, threads }                         → { cpuMathCores, systemInfo, llamaCppRelease }
//   load    { file, contextSize, sequences, batchSize, threads } → { sizeBytes, sequences, contextSize, batchSize, threads }
//   logits  { tokens, V }                               → Float32Array [T·V]: every position's raw logits
//   prefill { tokens, reps }                            → seconds per run (T tokens, next token sampled greedily)
//   decode  { prompts, steps, reps }                    → seconds per run of `steps` greedy tokens on each of the prompts' sequences
//   dispose {}
let llama = null, model = null, context = null, sequences = [];

async function freeModel() {
  for (const s of sequences) s.dispose();
  sequences = [];
  if (context) await context.dispose();
  context = null;
  if (model) await model.dispose();
  model = null;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

// A fresh sequence state: clearHistory() erases every token, which for a recurrent model drops the state.
async function reset(seq) {
  await seq.clearHistory();
}

const handlers = {
  async init({ entry, threads }) {
    const m = await import(entry);
    llama = await m.getLlama({
      build: 'never', usePrebuiltBinaries: true, skipDownload: true, gpu: false, progressLogs: false,
      maxThreads: threads, logLevel: m.LlamaLogLevel.error,
    });
    let release = 'unknown';
    try {
      const { createRequire } = await import('module');
      release = createRequire(entry)('../llama/binariesGithubRelease.json').release;
    } catch { /* informational only */ }
    return { cpuMathCores: llama.cpuMathCores, systemInfo: llama.systemInfo, llamaCppRelease: release };
  },

  async load({ file, contextSize = 1024, sequences: nseq = 1, batchSize = 512, threads }) {
    await freeModel();
    model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    context = await model.createContext({ contextSize, sequences: nseq, batchSize, threads, flashAttention: false });
    for (let i = 0; i < nseq; ++i) sequences.push(context.getSequence({ checkpoints: { interval: false } }));
    return { sizeBytes: model.size, sequences: nseq, contextSize: context.contextSize, batchSize: context.batchSize, threads: context.currentThreads };
  },

  async logits({ tokens, V }) {
    const seq = sequences[0];
    await reset(seq);
    const out = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
    const res = new Float32Array(tokens.length * V);
    for (let t = 0; t < tokens.length; ++t) {
      const map = out[t]?.next?.logits;
      if (!map || map.size !== V) throw new Error(`position ${t}: got ${map ? map.size : 'no'} logits, expected ${V}`);
      for (const [id, v] of map) {
        if (!(id >= 0 && id < V)) throw new Error(`position ${t}: token id ${id} outside [0, ${V})`);
        res[t * V + id] = v;
      }
    }
    return res;
  },

  async prefill({ tokens, reps }) {
    const seq = sequences[0];
    const times = [];
    for (let r = 0; r < reps; ++r) {
      await reset(seq);
      const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { token: true } }] : t));
      const t0 = now();
      const out = await seq.controlledEvaluate(input);
      times.push(now() - t0);
      if (out[tokens.length - 1]?.next?.token == null) throw new Error('prefill: no next token');
    }
    return times;
  },

  async decode({ prompts, steps, reps }) {
    const batch = prompts.length;
    if (batch > sequences.length) throw new Error(`decode: batch ${batch} > ${sequences.length} sequences in the context`);
    const seqs = sequences.slice(0, batch);
    const times = [];
    for (let r = 0; r < reps; ++r) {
      const first = [];
      for (const [b, seq] of seqs.entries()) {
        await reset(seq);
        const p = prompts[b];
        const o = await seq.controlledEvaluate(p.map((t, i) => (i === p.length - 1 ? [t, { generateNext: { token: true } }] : t)));
        first.push(o[p.length - 1].next.token);
      }
      // Lockstep: every sequence queues its next token in the same event-loop cycle, so node-llama-cpp
      // batches the `batch` tokens into one llama_decode per step. (Letting each sequence run its own
      // loop lets the batches fall apart into one decode per sequence.)
      const toks = first.slice();
      const t0 = now();
      for (let s = 0; s < steps; ++s) {
        const outs = await Promise.all(seqs.map((seq, b) => seq.controlledEvaluate([[toks[b], { generateNext: { token: true } }]])));
        outs.forEach(([o], b) => { toks[b] = o.next.token; });
      }
      times.push(now() - t0);
    }
    return times;
  },

  async dispose() {
    await freeModel();
    if (llama) await llama.dispose();
    llama = null;
    return null;
  },
};

process.on('message', async (msg) => {
  const { id, cmd, ...args } = msg;
  try {
    if (!handlers[cmd]) throw new Error(`unknown command '${cmd}'`);
    if (cmd !== 'init' && !llama) throw new Error('init first');
    const result = await handlers[cmd](args);
    process.send({ id, ok: true, result });
  } catch (e) {
    process.send({ id, ok: false, error: e && e.stack ? e.stack : String(e) });
  }
});
process.on('disconnect', () => process.exit(0));
