// config.json of a LLaVA-style vision-language model built from mambakit's parts (docs/mamba-vlm.md):
// a MambaOut image encoder (vision_config) → a projector (linear or mlp2x_gelu) → a Mamba-family language
// model (text_config), and the tensors its checkpoint holds: vision_tower.* (timm's MambaOut names),
// mm_projector.* (LLaVA's), language_model.* (the Mamba names).
import { MambakitError } from '../errors';
import { MambaConfig, parseMambaConfig, validateMambaCheckpoint } from './mamba-config';
import { MambaOutConfig, parseMambaOutConfig, validateMambaOutCheckpoint } from './mambaout-config';
import { IMAGENET_MEAN, IMAGENET_STD } from '../vision/preprocess';
import type { Checkpoint } from './safetensors';
import { isRecord } from './safetensors';
import { ExpectedShape, checkTensors, shapeStr } from './tensor-check';

export type ProjectorType = 'linear' | 'mlp2x_gelu';
export const PROJECTOR_TYPES: readonly ProjectorType[] = ['linear', 'mlp2x_gelu'];

/** The name prefixes of the three parts in the checkpoint. */
export const VLM_PREFIXES = { vision: 'vision_tower.', projector: 'mm_projector.', text: 'language_model.' } as const;

/** The `<image>` text that marks where the image goes in a text prompt (LLaVA's DEFAULT_IMAGE_TOKEN). */
export const IMAGE_PLACEHOLDER = '<image>';

export interface VlmConfig {
  modelType: 'mamba_vlm';
  /** The image encoder as the MambaOut loader reads it (its classifier head is not used). */
  vision: MambaOutConfig;
  /** 0-based stage whose output feature map becomes the image tokens (default: the last). */
  featureStage: number;
  projectorType: ProjectorType;
  /** The language model: dense Mamba, MoE-Mamba or Mixture-of-Mamba. */
  text: MambaConfig;
  /** The placeholder id of a prompt that the image tokens replace; also the id of each image position in `ids`. */
  imageTokenId: number;
  /** Mixture-of-Mamba: the modality ids of image and text tokens (null for the other language models). */
  imageModality: number | null;
  textModality: number | null;
  /** Preprocessing: the square side images are resized and center-cropped to, crop_pct, per-channel mean/std. */
  imageSize: number;
  cropPct: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

const fail = (msg: string): MambakitError => new MambakitError('E_FORMAT', msg);

/**
 * Parses {model_type: "mamba_vlm", vision_config: {MambaOut config, feature_stage?}, projector_type,
 * text_config: {Mamba-family config}, image_token_id, image_modality?, text_modality?, image_size?,
 * crop_pct?, image_mean?, image_std?}; every error names the file and the key.
 */
export function parseVlmConfig(json: unknown, file: string): VlmConfig {
  if (!isRecord(json)) throw fail(`${file}: config must be a JSON object`);
  if (json.model_type !== 'mamba_vlm') throw fail(`${file}: model_type must be "mamba_vlm", found ${JSON.stringify(json.model_type)}`);
  const part = (key: string): Record<string, unknown> => {
    const v = json[key];
    if (!isRecord(v)) throw fail(`${file}: config key '${key}' must be an object (the ${key === 'vision_config' ? 'MambaOut' : 'Mamba-family'} config), found ${JSON.stringify(v)}`);
    return v;
  };
  const visionJson = part('vision_config');
  const vision = parseMambaOutConfig(visionJson, `${file} (vision_config)`);
  const stages = vision.dims.length;
  const fs = visionJson.feature_stage ?? stages - 1;
  if (!(Number.isInteger(fs) && (fs as number) >= 0 && (fs as number) < stages))
    throw fail(`${file}: config key 'vision_config.feature_stage' must be a stage index in [0, ${stages - 1}], found ${JSON.stringify(visionJson.feature_stage)}`);
  const text = parseMambaConfig(part('text_config'), `${file} (text_config)`);

  const projectorType = json.projector_type ?? 'linear'; // LLaVA's default (build_vision_projector)
  if (!PROJECTOR_TYPES.includes(projectorType as ProjectorType))
    throw fail(`${file}: config key 'projector_type' must be one of ${PROJECTOR_TYPES.map((p) => JSON.stringify(p)).join(', ')}, found ${JSON.stringify(json.projector_type)}`);
  const id = json.image_token_id;
  if (!(typeof id === 'number' && Number.isInteger(id) && id >= 0))
    throw fail(`${file}: config key 'image_token_id' must be a token id (an integer ≥ 0), found ${JSON.stringify(id)}`);

  let imageModality: number | null = null, textModality: number | null = null;
  const names = text.modalities?.names ?? null;
  const modality = (key: string, dflt?: number): number => {
    const v = json[key];
    if (v === undefined && dflt !== undefined) return dflt;
    const m = typeof v === 'string' ? names?.indexOf(v) ?? -1 : v;
    if (!(typeof m === 'number' && Number.isInteger(m) && m >= 0 && m < (names?.length ?? 0)))
      throw fail(`${file}: config key '${key}' must name one of the language model's modalities (${names?.join(', ')}) or give its id, found ${JSON.stringify(v)}`);
    return m;
  };
  if (names) {
    imageModality = modality('image_modality');
    textModality = modality('text_modality', 0);
    if (imageModality === textModality && names.length > 1)
      throw fail(`${file}: config keys 'image_modality' and 'text_modality' are both ${JSON.stringify(names[imageModality])}: image tokens must run in their own modality`);
  } else {
    for (const key of ['image_modality', 'text_modality'])
      if (json[key] !== undefined) throw fail(`${file}: config key '${key}' is given, but the ${text.modelType} language model has no modalities (Mixture-of-Mamba only)`);
  }

  const imageSize = json.image_size ?? 224;
  if (!(typeof imageSize === 'number' && Number.isInteger(imageSize) && imageSize >= 1 && imageSize <= 4096))
    throw fail(`${file}: config key 'image_size' must be an integer in [1, 4096], found ${JSON.stringify(json.image_size)}`);
  const cropPct = json.crop_pct ?? 1;
  if (!(typeof cropPct === 'number' && cropPct > 0 && cropPct <= 1)) throw fail(`${file}: config key 'crop_pct' must be a number in (0, 1], found ${JSON.stringify(json.crop_pct)}`);
  const triple = (key: string, dflt: readonly number[], positive: boolean): [number, number, number] => {
    const v = json[key] ?? dflt;
    if (!(Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))))
      throw fail(`${file}: config key '${key}' must be 3 ${positive ? 'positive ' : ''}numbers (R, G, B), found ${JSON.stringify(json[key])}`);
    return [v[0], v[1], v[2]] as [number, number, number];
  };
  return {
    modelType: 'mamba_vlm', vision, featureStage: fs as number, projectorType: projectorType as ProjectorType, text,
    imageTokenId: id, imageModality, textModality, imageSize, cropPct,
    imageMean: triple('image_mean', IMAGENET_MEAN, false), imageStd: triple('image_std', IMAGENET_STD, true),
  };
}

/** The projector's tensors (LLaVA's nn.Sequential names): [D_text, C_vision] then, for mlp2x_gelu, [D_text, D_text]. */
export function expectedProjectorTensors(cfg: Pick<VlmConfig, 'vision' | 'featureStage' | 'projectorType' | 'text'>): ExpectedShape[] {
  const C = cfg.vision.dims[cfg.featureStage], D = cfg.text.hiddenSize;
  const out: ExpectedShape[] = [{ name: '0.weight', shape: [D, C] }, { name: '0.bias', shape: [D] }];
  if (cfg.projectorType === 'mlp2x_gelu') out.push({ name: '2.weight', shape: [D, D] }, { name: '2.bias', shape: [D] });
  return out;
}

/**
 * Checks the whole checkpoint before any weight loads: every name under one of the three prefixes, each part
 * exactly as its config says (E_FORMAT naming file, tensor, expected and found), image_token_id inside the
 * vocabulary. Returns the language model's vocabulary size (its embedding's rows).
 */
export function validateVlmCheckpoint(cfg: VlmConfig, ckpt: Checkpoint): number {
  const prefixes = Object.values(VLM_PREFIXES);
  const stray = ckpt.list().find((t) => !prefixes.some((p) => t.name.startsWith(p)));
  if (stray) throw fail(`${stray.file}: unexpected tensor '${stray.name}' ${shapeStr(stray.shape)} (a mamba_vlm checkpoint's names start with ${prefixes.map((p) => `'${p}'`).join(', ')})`);
  validateMambaOutCheckpoint(cfg.vision, ckpt, { prefix: VLM_PREFIXES.vision, featureStage: cfg.featureStage });
  checkTensors(ckpt, expectedProjectorTensors(cfg), {
    prefix: VLM_PREFIXES.projector, floats: true,
    context: ` (projector_type ${cfg.projectorType}: vision stage ${cfg.featureStage} has ${cfg.vision.dims[cfg.featureStage]} channels, the language model ${cfg.text.hiddenSize})`,
  });
  const V = validateMambaCheckpoint(cfg.text, ckpt, VLM_PREFIXES.text);
  if (cfg.imageTokenId >= V) throw fail(`${ckpt.dir}: config key 'image_token_id' is ${cfg.imageTokenId}, outside the language model's vocabulary [0, ${V})`);
  return V;
}
