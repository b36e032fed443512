// `mambakit serve --model DIR --port 8080`: the OpenAI-style completions server over one model.
import * as path from 'path';
import { parseArgs } from 'util';

import type { WeightDType } from '../dtype';
import { MambakitError } from '../errors';
import { loadModel } from '../models/load';
import { LogLevel, createServer, drain } from '../server/server';
import type { Device } from '../tensor';

export const SERVE_USAGE = `usage: mambakit serve --model DIR (a language, diffusion or vision-language model) [--port 8080] [--host 127.0.0.1] [--device cpu|cuda]
  [--dtype f32|bf16|f16] [--max-batch 32] [--max-queue 64] [--max-prompt-tokens 4096] [--max-tokens 2048]
  [--api-key KEY]... (or MAMBAKIT_API_KEY=KEY1,KEY2) [--log [--log-level info]] [--trust-proxy true|HOPS|ADDRS]
  [--drain-timeout 30] [--headers-timeout 10] [--request-timeout 30] [--keep-alive-timeout 72]
  [--sse-stall-timeout 30] [--max-connections 0]   (timeouts in seconds)
  [--vq DIR]   (MMaDA: the MAGVIT-v2 image tokenizer: POST /v1/images/generations, images on /v1/completions)
  [--editors NAME=DIR]...   (editor sets resident on the model; a request picks one with "editors": "NAME")`;

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export async function cmdServe(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, device: { type: 'string' },
      dtype: { type: 'string' }, 'max-batch': { type: 'string' }, 'max-queue': { type: 'string' }, 'max-prompt-tokens': { type: 'string' },
      'max-tokens': { type: 'string' }, 'api-key': { type: 'string', multiple: true }, log: { type: 'boolean' }, 'log-level': { type: 'string' },
      'trust-proxy': { type: 'string' }, 'drain-timeout': { type: 'string' }, 'headers-timeout': { type: 'string' },
      'request-timeout': { type: 'string' }, 'keep-alive-timeout': { type: 'string' }, 'sse-stall-timeout': { type: 'string' },
      'max-connections': { type: 'string' }, vq: { type: 'string' }, editors: { type: 'string', multiple: true },
    },
  });
  if (!values.model) throw new MambakitError('E_ARG', SERVE_USAGE);
  const int = (v: string | undefined, d: number, name: string): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new MambakitError('E_ARG', `--${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
  const seconds = (v: string | undefined, d: number, name: string): number => {
    const n = v === undefined ? d : Number(v);
    if (!(Number.isFinite(n) && n >= 0)) throw new MambakitError('E_ARG', `--${name} must be a number of seconds ≥ 0, got '${v}'`);
    return Math.round(n * 1000);
  };
  const apiKeys = [...(values['api-key'] ?? []), ...(process.env.MAMBAKIT_API_KEY ?? '').split(',')].map((k) => k.trim()).filter(Boolean);
  const level = values['log-level'];
  if (level !== undefined && !LEVELS.includes(level as LogLevel)) throw new MambakitError('E_ARG', `--log-level must be one of ${LEVELS.join(', ')}, got '${level}'`);
  const drainMs = seconds(values['drain-timeout'], 30, 'drain-timeout');
  const opts = {
    modelName: path.basename(path.resolve(values.model)),
    maxBatch: int(values['max-batch'], 32, 'max-batch'), maxQueue: int(values['max-queue'], 64, 'max-queue'),
    maxPromptTokens: int(values['max-prompt-tokens'], 4096, 'max-prompt-tokens'), maxTokens: int(values['max-tokens'], 2048, 'max-tokens'),
    apiKeys, log: values.log || level !== undefined ? ((level as LogLevel | undefined) ?? true) : false,
    trustProxy: trustProxy(values['trust-proxy']),
    headersTimeoutMs: seconds(values['headers-timeout'], 10, 'headers-timeout'),
    requestTimeoutMs: seconds(values['request-timeout'], 30, 'request-timeout'),
    keepAliveTimeoutMs: seconds(values['keep-alive-timeout'], 72, 'keep-alive-timeout'),
    sseStallTimeoutMs: seconds(values['sse-stall-timeout'], 30, 'sse-stall-timeout'),
    maxConnections: int(values['max-connections'], 0, 'max-connections'),
  };
  const model = await loadModel(values.model, {
    device: (values.device ?? 'cpu') as Device, dtype: (values.dtype ?? 'f32') as WeightDType, imageTokenizer: values.vq,
  });
  if (model.kind === 'classifier') {
    model.dispose();
    throw new MambakitError('E_ARG', `${values.model} holds an image classifier: use \`mambakit classify\``);
  }
  for (const spec of values.editors ?? []) {
    const at = spec.indexOf('=');
    if (at <= 0) throw new MambakitError('E_ARG', `--editors must be NAME=DIR, got '${spec}'`);
    await model.loadEditors(spec.slice(at + 1), spec.slice(0, at));
  }
  const app = createServer(model, opts);
  const address = await app.listen({ port: int(values.port, 8080, 'port'), host: values.host ?? '127.0.0.1' });
  process.stderr.write(`mambakit serving ${values.model} at ${address} (POST /v1/completions, GET /v1/models, /metrics, /health)` +
    `${apiKeys.length ? `, ${apiKeys.length} API key${apiKeys.length > 1 ? 's' : ''}` : ', no API key'}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`mambakit: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`mambakit: ${signal}: draining (up to ${drainMs / 1000} s)\n`);
    void drain(app, drainMs).then((r) => {
      process.stderr.write(`mambakit: stopped (${r.finished} request(s) finished, ${r.aborted} aborted)\n`);
      model.dispose();
      process.exit(0);
    }, (e: unknown) => {
      process.stderr.write(`mambakit: drain failed: ${(e as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

// --trust-proxy: true / false, a hop count, or comma-separated addresses and CIDRs of the proxies.
function trustProxy(v: string | undefined): boolean | number | string[] {
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}
