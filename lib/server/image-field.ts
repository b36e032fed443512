// The `image` field of the routes that take one (a diffusion model's and a VLM's /v1/completions): base64
// bytes (or a data: URL), never a path — the server reads no file a request names.
import { MambakitError } from '../errors';

/** Body limit of the routes that take an image: 16 MiB. */
export const IMAGE_BODY_LIMIT = 16 << 20;

/** The bytes of a base64 image field (optionally a data: URL); E_FORMAT when it is not base64. */
export function decodeBase64Image(s: string, field = 'image'): Buffer {
  const m = /^data:[\w.+-]+\/[\w.+-]+;base64,/i.exec(s);
  const b64 = (m ? s.slice(m[0].length) : s).replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 === 1 || (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) && !/^[A-Za-z0-9_-]*={0,2}$/.test(b64)))
    throw new MambakitError('E_FORMAT', `${field}: not a base64 string (send the PNG or JPEG bytes base64-encoded)`);
  return Buffer.from(b64, 'base64');
}
