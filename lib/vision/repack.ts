// timm stores convs as [Co, Ci/groups, kh, kw]; the kernels read them channels last: dense 3×3 as
// [3, 3, Ci, Co] (the output channel innermost, so the CPU loop over it vectorizes), depthwise 7×7
// ([C, 1, 7, 7]) as [7, 7, C].
import { MambakitError } from '../errors';
import { Device, Tensor } from '../tensor';

/** OIHW values → HWIO values (a depthwise conv has I = 1, which gives [kh, kw, 1, C] = [kh, kw, C]). */
export function oihwToHwio(w: Float32Array, O: number, I: number, KH: number, KW: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < O; ++o)
    for (let i = 0; i < I; ++i)
      for (let y = 0; y < KH; ++y) for (let x = 0; x < KW; ++x) out[((y * KW + x) * I + i) * O + o] = w[((o * I + i) * KH + y) * KW + x];
  return out;
}

/** A loaded f32 OIHW conv weight (on the cpu) → the kernels' layout on `device`; disposes the input. */
export async function repackConv(w: Tensor, device: Device, depthwise: boolean): Promise<Tensor> {
  try {
    const [O, I, KH, KW] = w.shape;
    if (w.shape.length !== 4 || w.dtype !== 'f32') throw new MambakitError('E_SHAPE', `repackConv: expected f32 [O, I, kh, kw], got ${w.toString()}`);
    const v = oihwToHwio((await w.data()) as Float32Array, O, I, KH, KW);
    return Tensor.from(v, depthwise ? [KH, KW, O] : [KH, KW, I, O], { device });
  } finally {
    w.dispose();
  }
}
