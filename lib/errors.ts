// Every error mambakit throws or rejects with: an Error with a `code`.
export type ErrorCode = 'E_SHAPE' | 'E_DTYPE' | 'E_DEVICE' | 'E_OOM' | 'E_CUDA' | 'E_FORMAT' | 'E_ARG';

const CODES: readonly string[] = ['E_SHAPE', 'E_DTYPE', 'E_DEVICE', 'E_OOM', 'E_CUDA', 'E_FORMAT', 'E_ARG'];

export class MambakitError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'MambakitError';
    this.code = code;
  }

  /** Turns what native code threw (an Error carrying `code`) into a MambakitError. */
  static from(e: unknown): Error {
    if (e instanceof MambakitError) return e;
    if (e instanceof Error) {
      const code = (e as Error & { code?: unknown }).code;
      if (typeof code === 'string' && CODES.includes(code)) return new MambakitError(code as ErrorCode, e.message);
      return e;
    }
    return new Error(String(e));
  }
}
