// Recurrent state slots of a native model (conv windows and SSM states for Mamba blocks, whatever a
// family's stateful blocks keep): an opaque handle the plan checks on every call.
import { MambakitError } from '../errors';
import { NativeState, call } from '../native';
import type { RecurrentState } from './interfaces';

export class ModelState implements RecurrentState {
  readonly #native: NativeState;
  constructor(native: NativeState) {
    this.#native = native;
  }

  /** @internal the handle passed to the native plan */
  get handle(): NativeState {
    return this.#native;
  }

  /** Sequence slots this state holds. */
  get batch(): number {
    return this.#native.slots;
  }

  /** Zeroes sequence `slot` (a freed slot starts its next sequence from the zero state); E_ARG outside [0, batch). */
  async zeroSlot(slot: number): Promise<void> {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < this.batch))
      throw new MambakitError('E_ARG', `zeroSlot: slot ${slot} is outside [0, ${this.batch})`);
    await call(() => this.#native.zeroSlot(slot));
  }

  /** Frees the state (a call already queued keeps what it needs). */
  dispose(): void {
    this.#native.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
