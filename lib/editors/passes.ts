// From a call's choice of editor sets to the native edits of that call (csrc/plan/edit.h, op 'reft').
import { MambakitError } from '../errors';
import type { ResidualEdit } from '../models/edits';
import { reft } from '../ops';
import { Tensor } from '../tensor';
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

/** Applies reft edits outside a plan (a VLM projector's output h [..., C]) with ops.reft, in order; returns a new tensor and disposes `h`. */
export async function applyReft(h: Tensor, edits: readonly ResidualEdit[]): Promise<Tensor> {
  let x = h;
  for (const e of edits) {
    if (!('reft' in e)) continue;
    const rows = Tensor.from(Int32Array.from(e.rows), [e.rows.length], { device: x.device });
    const editor = Tensor.from(Int32Array.from(e.reft.editor), [e.reft.editor.length], { device: x.device });
    try {
      const y = await reft(x, rows, editor, e.reft.R, e.reft.W, e.reft.b, { formula: e.reft.formula, activation: e.reft.activation });
      x.dispose();
      x = y;
    } finally {
      rows.dispose();
      editor.dispose();
    }
  }
  return x;
}
