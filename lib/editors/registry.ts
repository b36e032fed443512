// Editor sets resident on one loaded model, chosen per request (many tenants on one base).
//
// All editors of every attached set that share a site, a layer, a formula and an activation are stacked
// into one group: R, W [E, r_max, C] and b [E, r_max] on the model's device (ranks below r_max padded with
// zero rows, which changes nothing: act(0) = 0 for every activation, so a zero row's update is exactly 0).
// A call then needs only its rows and, per row, the index of its editor in the group: one native edit
// per group, whatever mix of tenants the batch holds, and a row's result does not depend on the others.
// Attaching or detaching a set rebuilds the groups (small: rank × width floats per editor).
import { MambakitError } from '../errors';
import { Device, Tensor } from '../tensor';
import type { Editor, EditorActivation, EditorFormula, EditorSet, EditorSite } from './format';

/** One stacked group: the native weights of every editor at (site, layer, formula, activation). */
export interface EditorGroup {
  readonly site: EditorSite;
  readonly layer: number;
  readonly formula: EditorFormula;
  readonly activation: EditorActivation;
  readonly R: Tensor;
  readonly W: Tensor;
  readonly b: Tensor;
}

/** One native editor pass: rows of the call's stream and, per row, its editor's index in the group. */
export interface EditorPass {
  group: EditorGroup;
  /** The plan block after which it applies (the site's afterBlock of the group's layer). */
  after: number;
  rows: Int32Array;
  editor: Int32Array;
}

/** A row (sequence) of a call: which set edits it and where its positions are in the stream. */
export interface EditedRow {
  /** The attached set's name, or null: no edit. */
  set: string | null;
  /** First stream row of this sequence in the call (b·T for a [B, T] call). */
  offset: number;
  /** Positions of this sequence in the call (T), and its prompt's length (prefix / suffix count within it). */
  length: number;
  promptLength: number;
  /** The image tokens' positions [start, end) (a VLM prompt), for positions kind 'image'. */
  imageSpan?: readonly [number, number];
  /** Stream rows [lo, hi) this call holds (a diffusion call over part of the sequence); others are skipped. */
  window?: readonly [number, number];
  /** Where the row sits after layer l when that depends on l (an image's H·W positions shrink per stage). */
  atLayer?: (layer: number) => { offset: number; length: number };
}

/** What a model tells the registry about its sites: the stream width and the number of edit points. */
export interface EditSites {
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** A VLM's vision encoder: its blocks and the stream width after each (MambaOut's stages differ). */
  readonly encoder?: { numLayers: number; widthAt: (layer: number) => number };
  readonly projector?: { hiddenSize: number };
  /** The stream width after block `layer` when it varies (MambaOut's stages; default hiddenSize). */
  readonly blockWidthAt?: (layer: number) => number;
  readonly modelType: string;
  /**
   * The plan block whose output is layer `l`'s output (default l): a transformer layer is two plan
   * blocks (attention, MLP), and an editor of layer l edits the layer's output, after its MLP.
   */
  readonly afterBlock?: (layer: number, site: EditorSite) => number;
}

export class EditorRegistry {
  readonly #sets = new Map<string, EditorSet>();
  // requests holding a set (acquire → release), and sets detached while held (removed at the last release)
  readonly #users = new Map<string, number>();
  readonly #detached = new Set<string>();
  #groups = new Map<string, EditorGroup>();  // key site|layer|formula|activation
  // set name → editor name → { group key, index }
  #where = new Map<string, Map<string, { key: string; index: number }>>();

  constructor(private readonly sites: EditSites, private readonly device: Device) {}

  /** The attached sets (not those detached while requests still hold them). */
  get names(): string[] {
    return [...this.#sets.keys()].filter((n) => !this.#detached.has(n));
  }

  has(name: string): boolean {
    return this.#sets.has(name) && !this.#detached.has(name);
  }

  /** A request starts using a set (E_ARG when none is attached under that name); release() when it ends. */
  acquire(name: string): void {
    if (!this.has(name)) this.#missing('generate', name);
    this.#users.set(name, (this.#users.get(name) ?? 0) + 1);
  }

  release(name: string): void {
    const n = (this.#users.get(name) ?? 1) - 1;
    if (n > 0) return void this.#users.set(name, n);
    this.#users.delete(name);
    if (this.#detached.delete(name)) {
      this.#sets.delete(name);
      this.#rebuild();
    }
  }

  /** Bytes of device memory the set's editors take (their share of the stacked groups, unpadded). */
  bytes(name: string): number {
    const set = this.#get(name, 'editors');
    return set.editors.reduce((a, e) => a + 4 * (2 * e.rank * e.hidden + e.rank), 0);
  }

  /** Checks a set against the model (sites, layers, widths), then makes it resident under `name`. */
  attach(name: string, set: EditorSet): void {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw new MambakitError('E_ARG', `editors: name must match [A-Za-z0-9_.:-]{1,64}, got ${JSON.stringify(name)}`);
    if (this.#sets.has(name)) throw new MambakitError('E_ARG', `editors: a set named '${name}' is already attached${this.#detached.has(name) ? ' (detached, still used by running requests)' : ' (detach it first)'}`);
    this.check(set, name);
    this.#sets.set(name, set);
    try {
      this.#rebuild();
    } catch (e) {
      this.#sets.delete(name);
      this.#rebuild();
      throw e;
    }
  }

  /** Removes a set: new requests cannot use it; requests running with it keep it until they end. */
  detach(name: string): void {
    if (!this.has(name)) this.#missing('detachEditors', name);
    if (this.#users.has(name)) this.#detached.add(name);
    else {
      this.#sets.delete(name);
      this.#rebuild();
    }
  }

  /** E_SHAPE / E_ARG when the set was made for another model or names sites this model lacks. */
  check(set: EditorSet, name: string): void {
    const s = this.sites;
    const where = `editors '${name}'`;
    if (set.model.hiddenSize !== s.hiddenSize)
      throw new MambakitError('E_SHAPE', `${where}: made for hidden size ${set.model.hiddenSize}, this ${s.modelType} model has ${s.hiddenSize}`);
    if (set.model.modelType !== undefined && set.model.modelType !== s.modelType)
      throw new MambakitError('E_ARG', `${where}: made for a ${set.model.modelType} model, this is a ${s.modelType}`);
    for (const e of set.editors) {
      const site = e.site === 'block' ? s : e.site === 'encoder' ? s.encoder : s.projector;
      if (!site) throw new MambakitError('E_ARG', `${where}: editor '${e.name}' edits the ${e.site}, which a ${s.modelType} model does not have`);
      const layers = 'numLayers' in site ? site.numLayers : 1;
      if (e.site !== 'projector' && !(e.layer >= 0 && e.layer < layers))
        throw new MambakitError('E_ARG', `${where}: editor '${e.name}' edits ${e.site} layer ${e.layer}; this model has ${layers} (0 … ${layers - 1})`);
      const width = 'widthAt' in site ? site.widthAt(e.layer) : e.site === 'block' && s.blockWidthAt ? s.blockWidthAt(e.layer) : site.hiddenSize;
      if (e.hidden !== width)
        throw new MambakitError('E_SHAPE', `${where}: editor '${e.name}' is [${e.rank}, ${e.hidden}], the ${e.site} stream${e.site === 'projector' ? '' : ` after layer ${e.layer}`} is ${width} wide`);
      if (e.rank > e.hidden) throw new MambakitError('E_SHAPE', `${where}: editor '${e.name}' has rank ${e.rank} > hidden size ${e.hidden}`);
      if (e.positions.kind === 'image' && !s.projector)
        throw new MambakitError('E_ARG', `${where}: editor '${e.name}' edits the image tokens; a ${s.modelType} model has none`);
    }
  }

  /**
   * The native passes of one call at `site` ('block' or 'encoder'): for every row's set, each editor at
   * that site edits its positions of the row (prefill: the prompt's positions; decode: the one new token,
   * decode-time editors only). Two editors of one group on the same stream row go to separate passes,
   * applied in the set's order.
   */
  passes(site: EditorSite, rows: readonly EditedRow[], phase: 'prefill' | 'decode'): EditorPass[] {
    // per group its passes; a row goes to the first pass that does not hold it yet, which is pass number
    // (times the group has seen the row): counted in a typed array (an image's every position is tens of
    // thousands of rows)
    const perGroup = new Map<string, { passes: Ints[]; seen: Uint16Array }>();
    for (const row of rows) {
      if (row.set === null) continue;
      const set = this.#get(row.set, 'generate');
      const where = this.#where.get(row.set) as Map<string, { key: string; index: number }>;
      for (const e of set.editors) {
        if (e.site !== site || (phase === 'decode' && !e.decode)) continue;
        const { key, index } = where.get(e.name) as { key: string; index: number };
        const geo = row.atLayer ? { ...row, ...row.atLayer(e.layer) } : row;
        const at = phase === 'decode' ? Int32Array.of(0) : positionsIn(e, geo);
        let g = perGroup.get(key);
        if (!g) perGroup.set(key, (g = { passes: [], seen: new Uint16Array(1024) }));
        const lo = row.window ? row.window[0] : -Infinity, hi = row.window ? row.window[1] : Infinity;
        for (let i = 0; i < at.length; ++i) {
          const r = geo.offset + at[i];
          if (!(r >= lo && r < hi)) continue;
          if (r >= g.seen.length) {
            const grown = new Uint16Array(Math.max(2 * g.seen.length, r + 1));
            grown.set(g.seen);
            g.seen = grown;
          }
          const k = g.seen[r]++;
          (g.passes[k] ?? (g.passes[k] = new Ints())).push(r, index);
        }
      }
    }
    const out: EditorPass[] = [];
    for (const [key, { passes: list }] of perGroup)
      for (const p of list) {
        const group = this.#groups.get(key) as EditorGroup;
        out.push({ group, after: this.sites.afterBlock?.(group.layer, site) ?? group.layer, rows: p.rows(), editor: p.editors() });
      }
    return out;
  }

  /** Whether any attached set edits decoded tokens (else a decode step needs no edit lookups). */
  decodes(set: string | null): boolean {
    return set !== null && this.#get(set, 'generate').editors.some((e) => e.decode);
  }

  dispose(): void {
    this.#sets.clear();
    this.#users.clear();
    this.#detached.clear();
    this.#rebuild();
  }

  // The set a call uses (held sets too).
  #get(name: string, what: string): EditorSet {
    return this.#sets.get(name) ?? this.#missing(what, name);
  }

  #missing(what: string, name: string): never {
    const names = this.names;
    throw new MambakitError('E_ARG', `${what}: no editor set named '${name}' is attached${names.length ? ` (attached: ${names.join(', ')})` : ''}`);
  }

  #rebuild(): void {
    for (const g of this.#groups.values()) for (const t of [g.R, g.W, g.b]) t.dispose();
    this.#groups = new Map();
    this.#where = new Map();
    const members = new Map<string, { set: string; e: Editor }[]>();
    for (const [name, set] of this.#sets) {
      const where = new Map<string, { key: string; index: number }>();
      this.#where.set(name, where);
      for (const e of set.editors) {
        const key = `${e.site}|${e.layer}|${e.formula}|${e.activation}`;
        const list = members.get(key) ?? [];
        members.set(key, list);
        where.set(e.name, { key, index: list.length });
        list.push({ set: name, e });
      }
    }
    for (const [key, list] of members) {
      const C = list[0].e.hidden, E = list.length, r = Math.max(...list.map((m) => m.e.rank));
      const R = new Float32Array(E * r * C), W = new Float32Array(E * r * C), b = new Float32Array(E * r);
      list.forEach(({ e }, i) => {
        R.set(e.R, i * r * C);
        W.set(e.W, i * r * C);
        b.set(e.b, i * r);
      });
      const { site, layer, formula, activation } = list[0].e;
      this.#groups.set(key, {
        site, layer, formula, activation,
        R: Tensor.from(R, [E, r, C], { device: this.device }),
        W: Tensor.from(W, [E, r, C], { device: this.device }),
        b: Tensor.from(b, [E, r], { device: this.device }),
      });
    }
  }
}

/** The positions of `row` an editor edits at prefill (clipped to the prompt; E_ARG for impossible ones). */
// (stream row, editor index) pairs of one pass, in growable typed arrays: a pass may hold every position
// of a batch of images.
class Ints {
  #rows = new Int32Array(256);
  #editors = new Int32Array(256);
  #n = 0;
  push(row: number, editor: number): void {
    if (this.#n === this.#rows.length) {
      const r = new Int32Array(2 * this.#n), e = new Int32Array(2 * this.#n);
      r.set(this.#rows);
      e.set(this.#editors);
      this.#rows = r;
      this.#editors = e;
    }
    this.#rows[this.#n] = row;
    this.#editors[this.#n++] = editor;
  }
  rows(): Int32Array { return this.#rows.slice(0, this.#n); }
  editors(): Int32Array { return this.#editors.slice(0, this.#n); }
}

export function positionsIn(e: Editor, row: EditedRow): Int32Array {
  const P = Math.min(row.promptLength, row.length), p = e.positions;
  const range = (a: number, b: number): Int32Array => {
    const out = new Int32Array(Math.max(0, b - a));
    for (let i = 0; i < out.length; ++i) out[i] = a + i;
    return out;
  };
  switch (p.kind) {
    case 'all':
      return range(0, row.length);
    case 'prefix': {
      // MRT's prefix starts after the image tokens (the first text after the image), when there is one
      const start = p.afterImage && row.imageSpan ? row.imageSpan[1] : 0;
      return range(start, Math.min(start + p.n, P));
    }
    case 'suffix': {
      const end = p.excludeLast ? P - 1 : P;
      return range(Math.max(0, end - p.n), end);
    }
    case 'image':
      if (!row.imageSpan) throw new MambakitError('E_ARG', `editor '${e.name}' edits the image tokens, and this prompt has no image`);
      return range(row.imageSpan[0], row.imageSpan[1]);
    case 'list': {
      const bad = p.positions.find((t) => t >= row.length);
      if (bad !== undefined) throw new MambakitError('E_ARG', `editor '${e.name}' edits position ${bad}, outside this ${row.length}-token sequence`);
      return Int32Array.from(p.positions);
    }
  }
}
