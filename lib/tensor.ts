// Tensor: a dense array with a dtype, a shape and a device, owning native memory.
import { DType, DTYPE_SIZE, TensorData, dtypeFromId, dtypeId, isDType } from './dtype';
import { MambakitError } from './errors';
import { NativeTensor, addon, call } from './native';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface FromOptions {
  /** Element type to store (default: f32 for Float32Array/number[], i32 for Int32Array, u8 for Uint8Array). */
  dtype?: DType;
  device?: Device;
}

type Source = Float32Array | Int32Array | Uint8Array | Uint16Array | readonly number[];

// Node 20 defines Symbol.dispose in its main realm only; a vm context (jest) lacks it. Define it
// where missing so `using t = Tensor.from(...)` works in both.
if (typeof Symbol.dispose !== 'symbol') Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('Symbol.dispose') });

// Backstop only: a tensor dropped without dispose() frees its memory when collected.
const registry = new FinalizationRegistry<NativeTensor>((h) => {
  if (!h.disposed) h.dispose();
});

export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly device: Device;
  #handle: NativeTensor | null;

  private constructor(handle: NativeTensor) {
    this.#handle = handle;
    this.dtype = dtypeFromId(handle.dtype);
    this.shape = Object.freeze(handle.shape.slice());
    this.device = handle.device as Device;
    registry.register(this, handle, this);
  }

  /** @internal wraps a native handle (used by ops). */
  static fromHandle(h: NativeTensor): Tensor {
    return new Tensor(h);
  }

  /**
   * Copies `data` into a new tensor. Float data converts to the requested float dtype (f32/f16/bf16,
   * round to nearest even); a Uint16Array holds raw f16/bf16 bits and needs `dtype` to say which.
   */
  static from(data: Source, shape: readonly number[], opts: FromOptions = {}): Tensor {
    const device = opts.device ?? 'cpu';
    let view: ArrayBufferView;
    let src: DType;
    if (data instanceof Float32Array) [view, src] = [data, 'f32'];
    else if (data instanceof Int32Array) [view, src] = [data, 'i32'];
    else if (data instanceof Uint8Array) [view, src] = [data, 'u8'];
    else if (data instanceof Uint16Array) {
      if (opts.dtype !== 'f16' && opts.dtype !== 'bf16')
        throw new MambakitError('E_DTYPE', 'Tensor.from: a Uint16Array holds raw f16/bf16 bits; pass dtype "f16" or "bf16"');
      [view, src] = [data, opts.dtype];
    } else if (Array.isArray(data)) {
      src = opts.dtype === 'i32' ? 'i32' : 'f32';
      view = src === 'i32' ? Int32Array.from(data) : Float32Array.from(data);
    } else {
      throw new MambakitError('E_ARG', 'Tensor.from: data must be a Float32Array, Int32Array, Uint8Array, Uint16Array or number[]');
    }
    const dtype = opts.dtype ?? src;
    if (!isDType(dtype)) throw new MambakitError('E_DTYPE', `Tensor.from: unknown dtype '${String(dtype)}'`);
    return new Tensor(call(() => addon.tensorFrom(view, dtypeId(src), dtypeId(dtype), shape.slice(), device)));
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get nbytes(): number {
    return this.size * DTYPE_SIZE[this.dtype];
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  /** @internal the native handle; throws E_ARG once disposed. */
  get handle(): NativeTensor {
    if (this.#handle === null) throw new MambakitError('E_ARG', `tensor ${this.toString()} is disposed`);
    return this.#handle;
  }

  /**
   * Reads the values once every op queued before has run. f16/bf16 come back as Float32Array
   * unless `raw` is set (then Uint16Array bits).
   */
  async data(opts: { raw?: boolean } = {}): Promise<TensorData> {
    const h = this.handle;
    const half = this.dtype === 'f16' || this.dtype === 'bf16';
    const buf = await call(() => h.read(half && !opts.raw));
    if (half) return opts.raw ? new Uint16Array(buf) : new Float32Array(buf);
    if (this.dtype === 'i32') return new Int32Array(buf);
    if (this.dtype === 'u8') return new Uint8Array(buf);
    return new Float32Array(buf);
  }

  /** A copy on `device` ('cpu', 'cuda', 'cuda:N'). */
  async to(device: Device): Promise<Tensor> {
    const h = this.handle;
    return new Tensor(await call(() => h.to(device)));
  }

  /** Frees the memory now (work already queued on it still completes). Safe to call twice. */
  dispose(): void {
    if (this.#handle === null) return;
    registry.unregister(this);
    this.#handle.dispose();
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `${this.dtype}[${this.shape.join(', ')}]@${this.device}`;
  }
}
