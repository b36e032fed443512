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
    // Duck-typed: errors made by the addon come from the main realm, where `instanceof Error` fails
    // inside a vm context (jest), so test the shape instead.
    if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
      const { code, message } = e as { code?: unknown; message: string };
      if (typeof code === 'string' && CODES.includes(code)) return new MambakitError(code as ErrorCode, message);
      return e instanceof Error ? e : new Error(message);
    }
    return new Error(String(e));
  }
}
