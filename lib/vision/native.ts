// The MambaOut part of the addon (binding/mambaout_wrap.cc), typed here so the vision code does not
// widen lib/native.ts's Addon interface.
import { NativeTensor, addon } from '../native';

export interface MambaOutNativeConfig { dims: number[]; depths: number[]; classes: number; eps: number }

/** A loaded MambaOut plan. */
export interface NativeMambaOut {
  forward(pixels: NativeTensor): Promise<NativeTensor>;
}

interface VisionAddon {
  /** weights: timm state-dict name → tensor, convs in the kernels' layout (dense [3, 3, Ci, Co], depthwise [7, 7, C]). */
  mambaoutCreate(cfg: MambaOutNativeConfig, weights: Record<string, NativeTensor>, device: string): NativeMambaOut;
  /** One gated CNN block (weights named as inside a block: "norm.weight", "fc1.weight", ...). */
  mambaoutBlock(C: number, eps: number, weights: Record<string, NativeTensor>, x: NativeTensor): Promise<NativeTensor>;
}

export const visionAddon = addon as unknown as VisionAddon;
