// Continuous batching: concurrent requests share batched decode steps over a pool of state slots.
// Between steps, waiting requests are admitted (prefilled one by one into a free slot, a few per
// step while others run); every step
// then decodes one token for all running requests at once; a request's slot is freed the moment
// it ends, errors or is aborted. Each request samples from its own logits row with its own seed
// and step counter, so what it generates does not depend on what else is running.
import { MambakitError } from '../errors';
import type { BatchLoad, RecurrentLM, RecurrentState } from '../models/interfaces';
import { modalityId } from '../models/tokens';
import { embedding, sample } from '../ops';
import { Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import { GenerateChunk, GenerateOptions, GenerateResult, Request } from './request';
import { topLogprobs } from './top-logprobs';

export interface SchedulerOptions {
  /** Most sequences decoded in one step (default 32). */
  maxBatch?: number;
  /** Requests that may wait for a slot once every slot is taken; more are refused with E_ARG "queue is full" (default 1024). */
  maxQueue?: number;
  /**
   * Most waiting requests prefilled between two decode steps while others are running (default 4):
   * a burst of arrivals then delays running requests by a few prefills, not by all of them.
   */
  maxPrefillsPerStep?: number;
}

/**
 * What a request brings to its own calls beyond its prompt ids (internal: model classes pass it, e.g. a
 * vision-language model's prompt with image embeddings in it).
 */
export interface RequestInputs {
  /** The prefill's input instead of the prompt ids: embeddings f32 [1, T, D], T = the prompt's length. */
  prefillEmbeds?: Tensor;
  /** Mixture-of-Mamba: the modality id of each prompt token (default: the request's modality for all). */
  prefillModalities?: readonly number[];
  /** The prompt's image tokens [start, end), for the positions of its editors. */
  imageSpan?: readonly [number, number];
}

// A request plus the hand-off to its consumer (chunks queued until pulled).
class Job {
  slot = -1;
  modality = 0; // Mixture-of-Mamba modality id of the generated tokens (and of the prompt by default)
  last = -1;
  cancelled = false;
  readonly chunks: GenerateChunk[] = [];
  error: unknown = null;
  ended = false;
  #wake: (() => void) | null = null;
  // the editor set this request holds (released once, when it ends)
  #release: (() => void) | null;
  constructor(readonly req: Request, readonly inputs: RequestInputs, readonly editors: string | null, release: (() => void) | null) {
    this.#release = release;
  }
  push(c: GenerateChunk): void { this.chunks.push(c); this.#notify(); }
  end(error: unknown = null): void {
    this.ended = true;
    this.error = error;
    const r = this.#release;
    this.#release = null;
    r?.();
    this.#notify();
  }
  wait(): Promise<void> { return new Promise((r) => { this.#wake = r; }); }
  #notify(): void { const w = this.#wake; this.#wake = null; w?.(); }
  get stop(): boolean { return this.cancelled || this.req.aborted; }
}

/** Continuous batching over any RecurrentLM: its state slots are the batch. */
export class BatchScheduler<S extends RecurrentState = RecurrentState> {
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly maxPrefillsPerStep: number;
  #pool: S | null = null;
  #free: number[] = [];
  #pending: Job[] = [];
  #active: Job[] = [];
  #running = false;

  constructor(private readonly model: RecurrentLM<S>, opts: SchedulerOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 32;
    this.maxQueue = opts.maxQueue ?? 1024;
    this.maxPrefillsPerStep = opts.maxPrefillsPerStep ?? 4;
    if (!(Number.isInteger(this.maxBatch) && this.maxBatch >= 1)) throw new MambakitError('E_ARG', `maxBatch must be a positive integer, got ${this.maxBatch}`);
    if (!(Number.isInteger(this.maxPrefillsPerStep) && this.maxPrefillsPerStep >= 1))
      throw new MambakitError('E_ARG', `maxPrefillsPerStep must be a positive integer, got ${this.maxPrefillsPerStep}`);
  }

  /** Requests running and waiting. */
  get load(): BatchLoad {
    return { running: this.#active.length, waiting: this.#pending.length, freeSlots: this.#pool ? this.#free.length : this.maxBatch };
  }

  /** True when a new request would have to wait beyond maxQueue (waiting ≥ free slots + maxQueue). */
  get full(): boolean {
    return this.#pending.length >= this.load.freeSlots + this.maxQueue;
  }

  async *generate(tokenizer: Tokenizer | null, prompt: string | readonly number[], opts: GenerateOptions, inputs: RequestInputs = {}): AsyncGenerator<GenerateChunk, GenerateResult> {
    const req = new Request(tokenizer, prompt, opts); // validates options and prompt first
    for (const id of req.promptIds)
      if (!(Number.isInteger(id) && id >= 0 && id < this.model.vocabSize))
        throw new MambakitError('E_ARG', `generate: token id ${id} is outside [0, ${this.model.vocabSize})`);
    const modality = this.#modalityOf(req.opts.modality);
    const T = req.promptIds.length;
    const e = inputs.prefillEmbeds;
    if (e && !(e.shape.length === 3 && e.shape[0] === 1 && e.shape[1] === T))
      throw new MambakitError('E_SHAPE', `generate: prefill embeddings must be [1, ${T}, D] for a ${T}-token prompt, got [${e.shape.join(', ')}]`);
    if (inputs.prefillModalities && inputs.prefillModalities.length !== T)
      throw new MambakitError('E_SHAPE', `generate: ${inputs.prefillModalities.length} prompt modalities for a ${T}-token prompt`);
    if (this.full) throw new MambakitError('E_ARG', `generate: queue is full (${this.#pending.length} waiting for ${this.load.freeSlots} free slots + ${this.maxQueue} queue places)`);
    // the request holds its editor set from here to its end (a detach meanwhile waits for it)
    const set = req.opts.editors ?? null, reg = this.model.editorRegistry;
    if (set !== null) reg.acquire(set);
    const job = new Job(req, inputs, set, set === null ? null : () => reg.release(set));
    job.modality = modality;
    this.#pending.push(job);
    this.#kick();
    try {
      for (;;) {
        while (job.chunks.length > 0) yield job.chunks.shift() as GenerateChunk;
        if (job.ended) break;
        await job.wait();
      }
      if (job.error) throw job.error;
      return job.req.result();
    } finally {
      job.cancelled = true; // a consumer that stops pulling frees its slot at the next step
    }
  }

  // The request's modality id, checked before it joins a batch (a bad one must fail alone).
  #modalityOf(m: number | string | undefined): number {
    const names = this.model.modalityNames;
    if (!names) {
      if (m !== undefined) throw new MambakitError('E_ARG', `generate: modality given, but this ${this.model.modelType} model has none`);
      return 0;
    }
    if (m === undefined) {
      if (!this.model.usesModalities) return 0;
      throw new MambakitError('E_ARG', `generate: this Mixture-of-Mamba model needs a modality (one of ${names.join(', ')})`);
    }
    return modalityId(m, names, 'generate');
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop().catch((e: unknown) => {
      // a failure inside a step: every request in flight ends with it, the pool is rebuilt later
      for (const j of [...this.#active, ...this.#pending]) j.end(e);
      this.#active = [];
      this.#pending = [];
      this.#pool?.dispose();
      this.#pool = null;
    }).finally(() => {
      this.#running = false;
      if (this.#pending.length > 0) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    while (this.#pending.length > 0 || this.#active.length > 0) {
      if (!this.#pool) {
        this.#pool = this.model.newState(this.maxBatch);
        this.#free = Array.from({ length: this.maxBatch }, (_, i) => this.maxBatch - 1 - i);
      }
      const pool = this.#pool;
      // admit waiting requests into free slots: each prefilled alone, from a zeroed slot; while others
      // are running, at most maxPrefillsPerStep before the next decode step (chunked admission)
      for (let admitted = 0; this.#pending.length > 0 && this.#free.length > 0 && (this.#active.length === 0 || admitted < this.maxPrefillsPerStep); ++admitted) {
        const job = this.#pending.shift() as Job;
        if (job.stop) { job.end(); continue; }
        job.slot = this.#free.pop() as number;
        await pool.zeroSlot(job.slot);
        const modalities = this.model.usesModalities ? [job.inputs.prefillModalities ?? job.req.promptIds.map(() => job.modality)] : undefined;
        const logits = await this.model.prefill(job.inputs.prefillEmbeds ?? [job.req.promptIds], pool, { slots: [job.slot], modalities, editors: job.editors, imageSpans: [job.inputs.imageSpan ?? null] });
        this.#active.push(job);
        await this.#advance(job, logits);
        logits.dispose();
      }
      this.#active = this.#active.filter((j) => this.#keep(j));
      if (this.#active.length === 0) continue;
      // one decode step for everyone running
      const batch = this.#active;
      const modalities = this.model.usesModalities ? batch.map((j) => j.modality) : undefined;
      // rows whose editor set edits decoded tokens too (MRT's default is prefill only: usually none)
      const reg = this.model.editorRegistry;
      const editors = batch.some((j) => reg.decodes(j.editors)) ? batch.map((j) => j.editors) : undefined;
      const logits = await this.model.step(batch.map((j) => j.last), pool, { slots: batch.map((j) => j.slot), modalities, editors });
      // requests with the same sampling options draw in one call, each with its own (seed, step) key
      const groups = new Map<string, number[]>();
      batch.forEach((j, b) => {
        if (j.stop) return;
        const o = j.req.opts;
        const key = JSON.stringify([o.temperature, o.topK, o.topP, o.minP, o.repetitionPenalty]);
        groups.set(key, [...(groups.get(key) ?? []), b]);
      });
      for (const rowsOf of groups.values()) {
        const sub = rowsOf.length === batch.length ? logits
          : await embedding(Tensor.from(Int32Array.from(rowsOf), [rowsOf.length], { device: this.model.device }), logits);
        await this.#advanceRows(rowsOf.map((b) => batch[b]), sub);
        if (sub !== logits) sub.dispose();
      }
      logits.dispose();
      this.#active = this.#active.filter((j) => this.#keep(j));
    }
  }

  // Samples one request's next token from its logits row [1, V].
  async #advance(job: Job, logits: Tensor): Promise<void> {
    if (!job.stop) await this.#advanceRows([job], logits);
  }

  // Samples the next token of each job from its row of `logits` [n, V] (jobs share sampling options)
  // in one call, keyed per row by the job's own (seed, step), and hands the chunks over.
  async #advanceRows(jobs: Job[], logits: Tensor): Promise<void> {
    const dev = this.model.device;
    const keys = Tensor.from(Int32Array.from(jobs.flatMap((j) => [j.req.seed | 0, j.req.step])), [jobs.length, 2], { device: dev });
    let prev: Tensor | undefined;
    if (jobs[0].req.usesPenalty) {
      const P = Math.max(...jobs.map((j) => j.req.history.length));
      const data = new Int32Array(jobs.length * P).fill(-1); // -1 pads the shorter histories
      jobs.forEach((j, i) => data.set(j.req.history, i * P));
      prev = Tensor.from(data, [jobs.length, P], { device: dev });
    }
    // rows of the requests that asked for top log-probabilities, to the host (before sampling: same logits)
    const want = jobs.flatMap((j, i) => ((j.req.opts.topLogprobs ?? 0) > 0 ? [i] : []));
    let rows: Float32Array | null = null;
    if (want.length > 0) {
      const t = want.length === jobs.length ? logits : await embedding(Tensor.from(Int32Array.from(want), [want.length], { device: dev }), logits);
      rows = (await t.data()) as Float32Array;
      if (t !== logits) t.dispose();
    }
    const { ids, logprobs } = await sample(logits, { ...jobs[0].req.opts, prev, keys });
    keys.dispose();
    prev?.dispose();
    const idv = (await ids.data()) as Int32Array;
    const lpv = (await logprobs.data()) as Float32Array;
    ids.dispose();
    logprobs.dispose();
    const V = logits.shape[1];
    jobs.forEach((job, i) => {
      const k = rows ? want.indexOf(i) : -1;
      const top = k >= 0 ? topLogprobs((rows as Float32Array).subarray(k * V, (k + 1) * V), job.req.opts.topLogprobs as number, job.req.opts, job.req.usesPenalty ? job.req.history : null) : undefined;
      const chunk = job.req.accept(idv[i], lpv[i], top);
      if (chunk) job.push(chunk);
      job.last = idv[i];
    });
  }

  // Frees the slot of a request that has ended (finished, aborted or abandoned by its consumer).
  #keep(job: Job): boolean {
    if (!job.stop && job.req.finishReason === null) return true;
    if (job.slot >= 0) this.#free.push(job.slot);
    job.slot = -1;
    job.end();
    return false;
  }

  /** Frees the state pool (requests in flight end with E_ARG). */
  dispose(): void {
    for (const j of [...this.#active, ...this.#pending]) j.end(new MambakitError('E_ARG', 'generate: the model was disposed'));
    this.#active = [];
    this.#pending = [];
    this.#pool?.dispose();
    this.#pool = null;
  }
}
