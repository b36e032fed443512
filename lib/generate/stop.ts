// Stop strings over streamed text: text is released only once it cannot be the start of a stop
// string, and a stop string itself is never emitted.
export class StopMatcher {
  #held = '';
  readonly #stops: readonly string[];
  readonly #keep: number;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
    this.#keep = Math.max(0, ...this.#stops.map((s) => s.length - 1));
  }

  /** Adds text; returns what may be emitted now and whether a stop string was hit. */
  push(text: string): { text: string; stopped: boolean } {
    this.#held += text;
    let cut = -1;
    for (const s of this.#stops) {
      const i = this.#held.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const out = this.#held.slice(0, cut);
      this.#held = '';
      return { text: out, stopped: true };
    }
    // hold back the longest tail that is a prefix of some stop string
    let hold = 0;
    for (let k = Math.min(this.#keep, this.#held.length); k > 0; --k) {
      const tail = this.#held.slice(this.#held.length - k);
      if (this.#stops.some((s) => s.startsWith(tail))) { hold = k; break; }
    }
    const out = this.#held.slice(0, this.#held.length - hold);
    this.#held = this.#held.slice(this.#held.length - hold);
    return { text: out, stopped: false };
  }

  /** The text still held back (emitted at the end when no stop string completed). */
  flush(): string {
    const out = this.#held;
    this.#held = '';
    return out;
  }
}
