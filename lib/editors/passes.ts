// From a call's choice of editor sets to the native edits of that call (csrc/plan/edit.h, op 'reft').
import { MambakitError } from '../errors';
import type { ResidualEdit } from '../models/edits';
import type { EditorSite } from './format';
import type { EditedRow, EditorRegistry } from './registry';

/** Which attached editor set edits each sequence of a call: one name for all, one per sequence, or null. */
export type EditorChoice = string | null | readonly (string | null)[];

/** The rows of a [B, T] call (every position is prompt: forward / prefill; T = 1 with phase 'decode'). */
export function callRows(choice: EditorChoice | undefined, B: number, T: number, what: string, extra?: readonly (Partial<EditedRow> | undefined)[]): EditedRow[] | null {
  if (choice === undefined || choice === null) return null;
  const sets = typeof choice === 'string' ? Array.from({ length: B }, () => choice) : [...choice];
  if (sets.length !== B) throw new MambakitError('E_SHAPE', `${what}: editors names ${sets.length} sets for ${B} sequences`);
  if (sets.every((s) => s === null)) return null;
  return sets.map((set, b) => ({ set, offset: b * T, length: T, promptLength: T, ...extra?.[b] }));
}

/** The residual-stream edits ('reft', lib/models/edits.ts) of a call at `site`, from its rows' editor sets. */
export function editorEdits(reg: EditorRegistry, site: EditorSite, rows: readonly EditedRow[] | null, phase: 'prefill' | 'decode'): ResidualEdit[] {
  if (!rows) return [];
  return reg.passes(site, rows, phase).map(({ group: g, after, rows: r, editor }) => ({
    after, rows: r, reft: { editor, R: g.R, W: g.W, b: g.b, formula: g.formula, activation: g.activation },
  }));
}
