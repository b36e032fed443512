// Shared by the benchmark scripts: machine description, timing, results files.
import * as fs from 'fs';
import * as path from 'path';

export { machine } from '../lib/bench/machine';
export type { Machine } from '../lib/bench/machine';

export { median } from '../lib/bench/util';

export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

export function writeResults(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  console.log(`wrote ${file}`);
}
