// POST /v1/completions of a vision-language model: the language model's route (continuous batching,
// streaming, logprobs) with the extension field `image` — base64 PNG/JPEG bytes or a data: URL, never a
// path (the server reads no file a request names) — placed at the prompt's `<image>` (or first).
import type { VisionLanguageModel } from '../models/interfaces';
import { IMAGE_BODY_LIMIT, decodeBase64Image } from './image-field';
import type { CompletionPrompts } from './language';

export function vlmPrompts(model: VisionLanguageModel): CompletionPrompts {
  return {
    properties: { image: { type: 'string', minLength: 1 } },
    bodyLimit: IMAGE_BODY_LIMIT,
    read: (b) => {
      const image = typeof b.image === 'string' ? decodeBase64Image(b.image) : undefined; // E_FORMAT: 400
      const ids = model.tokenize(b.prompt); // E_ARG (no tokenizer, two placeholders): 400
      const placeholder = ids.includes(model.imageTokenId);
      // the image is decoded and encoded when the generation starts (an undecodable one is a 400 then)
      return {
        tokens: ids.length + (image ? model.imageTokens - (placeholder ? 1 : 0) : 0),
        generate: (o) => model.generate({ image, prompt: ids }, o),
      };
    },
  };
}
