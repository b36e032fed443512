// The check every family's loader makes before any weight loads: the checkpoint holds exactly the tensors
// of its config, with their shapes. One problem list, one E_FORMAT naming file, tensor, expected and found.
import { MambakitError } from '../errors';
import type { Checkpoint } from './safetensors';

/** A tensor a checkpoint must hold (optional: may be absent, and is checked when present). */
export interface ExpectedShape {
  name: string;
  shape: readonly number[];
  optional?: boolean;
}

export interface TensorCheckOptions {
  /** Names under this prefix are this part's (a VLM's 'vision_tower.'); the expected names get it prepended. */
  prefix?: string;
  /** Appended to the shape and unexpected-tensor messages, e.g. ' (depths [3, 3], dims [8, 16])'. */
  context?: string;
  /** An integer tensor (I32 / I64) where a float is expected is a problem too. */
  floats?: boolean;
}

export const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Throws E_FORMAT with the first problem (and how many more there are): an expected tensor missing (unless
 * optional), one of another shape (or not a float), a name under the prefix that is not expected.
 */
export function checkTensors(ckpt: Checkpoint, expected: readonly ExpectedShape[], opts: TensorCheckOptions = {}): void {
  const prefix = opts.prefix ?? '', context = opts.context ?? '';
  const problems: string[] = [];
  const known = new Set(expected.map((t) => prefix + t.name));
  for (const t of expected) {
    const name = prefix + t.name;
    if (!ckpt.has(name)) {
      if (!t.optional) problems.push(`${ckpt.dir}: tensor '${name}' is missing (expected ${shapeStr(t.shape)})`);
      continue;
    }
    const found = ckpt.get(name);
    if (shapeStr(found.shape) !== shapeStr(t.shape)) problems.push(`${found.file}: tensor '${name}' has shape ${shapeStr(found.shape)}, expected ${shapeStr(t.shape)}${context}`);
    else if (opts.floats && (found.dtype === 'I32' || found.dtype === 'I64')) problems.push(`${found.file}: tensor '${name}' is ${found.dtype}, expected a float dtype`);
  }
  for (const t of ckpt.list())
    if (t.name.startsWith(prefix) && !known.has(t.name)) problems.push(`${t.file}: unexpected tensor '${t.name}' ${shapeStr(t.shape)}${context}`);
  if (problems.length > 0)
    throw new MambakitError('E_FORMAT', problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''));
}
