// llama.cpp as an independent reference: installs node-llama-cpp into tools/llama-cpp on demand
// (scripts/llama-cpp-setup.js) and drives it in a child process (scripts/llama-cpp-worker.mjs), since
// node-llama-cpp is ESM-only and jest's CommonJS sandbox cannot import() it.
import { ChildProcess, fork } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** The repository root (works from test/helpers and from dist/test/helpers). */
export function repoRoot(): string {
  for (let d = __dirname; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'tools', 'llama-cpp', 'package.json')) && fs.existsSync(path.join(d, 'scripts', 'llama-cpp-setup.js'))) return d;
    if (path.dirname(d) === d) throw new Error(`llama.cpp reference: no tools/llama-cpp above ${__dirname}`);
  }
}

interface Setup {
  toolsDir: string;
  entry: string;
  wanted: string;
  ensureLlamaCpp(opts?: { quiet?: boolean }): { dir: string; entry: string; version: string; installed: boolean };
  dirBytes(dir: string): number;
}

export function setupModule(): Setup {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(repoRoot(), 'scripts', 'llama-cpp-setup.js')) as Setup;
}

/** Installs node-llama-cpp (pinned, CPU prebuilt only) when missing; throws a clear error when it cannot. */
export function ensureLlamaCpp(): { dir: string; entry: string; version: string; installed: boolean } {
  return setupModule().ensureLlamaCpp();
}

export interface LlamaInit { cpuMathCores: number; systemInfo: string; llamaCppRelease: string }
export interface LlamaLoaded { sizeBytes: number; sequences: number; contextSize: number; batchSize: number; threads: number }
export interface LoadOptions { contextSize?: number; sequences?: number; batchSize?: number; threads: number }

/** One llama.cpp child process: init once, load a GGUF, then query logits or time prefill/decode. */
export class LlamaCpp {
  private child: ChildProcess;
  private next = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: Error | null = null;
  private stderr = '';
  version = '';
  init: LlamaInit | null = null;

  private constructor() {
    this.child = fork(path.join(repoRoot(), 'scripts', 'llama-cpp-worker.mjs'), [], {
      serialization: 'advanced', // typed arrays cross as typed arrays
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      execArgv: [],
    });
    this.child.stderr?.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString()).slice(-8000); });
    this.child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`llama.cpp worker: ${m.error}`));
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`llama.cpp worker exited (code ${code}, signal ${signal})${this.stderr ? `; stderr:\n${this.stderr}` : ''}`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
  }

  /** Installs if needed, starts the worker and loads llama.cpp with `threads` threads. */
  static async start(threads: number): Promise<LlamaCpp> {
    const setup = ensureLlamaCpp();
    const l = new LlamaCpp();
    l.version = setup.version;
    l.init = await l.call<LlamaInit>('init', { entry: setup.entry, threads });
    return l;
  }

  call<R>(cmd: string, args: Record<string, unknown> = {}): Promise<R> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.next++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  load(file: string, opts: LoadOptions): Promise<LlamaLoaded> {
    return this.call<LlamaLoaded>('load', { file, ...opts });
  }

  /** Raw logits of every position [T·V] for one sequence evaluated from an empty state. */
  logits(tokens: number[], V: number): Promise<Float32Array> {
    return this.call<Float32Array>('logits', { tokens, V });
  }

  /** Seconds per prefill of `tokens` (the next token is sampled greedily from the last logits). */
  prefill(tokens: number[], reps: number): Promise<number[]> {
    return this.call<number[]>('prefill', { tokens, reps });
  }

  /** Seconds per `steps` greedy decode steps on each of prompts.length sequences, batched together. */
  decode(prompts: number[][], steps: number, reps: number): Promise<number[]> {
    return this.call<number[]>('decode', { prompts, steps, reps });
  }

  /** Worker's resident set (bytes), from /proc. */
  rssBytes(): number {
    try {
      const s = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(s);
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** Peak resident set of the worker (bytes), from /proc. */
  peakRssBytes(): number {
    try {
      const s = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(s);
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const timeout = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
    try {
      await Promise.race([this.call('dispose'), timeout(10000)]);
    } catch { /* exiting anyway */ }
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    if (this.child.connected) this.child.disconnect();
    await Promise.race([gone, timeout(5000)]);
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
