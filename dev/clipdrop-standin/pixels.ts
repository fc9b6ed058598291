/** The image work of the stand-in: cheap, deterministic imitations of ClipDrop's models. */
import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface EncodedImage {
  body: Buffer;
  contentType: `image/${ImageFormat}`;
}

/** Pixels this close (euclidean RGB distance) to the top-left pixel count as background. */
const BACKGROUND_DISTANCE = 40;

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

/** Format from the magic bytes: like the real API, the part's declared content type is not trusted. */
export function sniffFormat(bytes: Buffer): ImageFormat | undefined {
  if (bytes.subarray(0, 8).equals(PNG_MAGIC)) return 'png';
  if (bytes.subarray(0, 3).equals(JPEG_MAGIC)) return 'jpeg';
  const riff = bytes.subarray(0, 4).toString('latin1');
  if (riff === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  return undefined;
}

/** Reads only the header, so limits are enforced before anything is decoded (no pixel bombs). */
export async function dimensions(bytes: Buffer): Promise<{ width: number; height: number }> {
  const { width, height } = await sharp(bytes).metadata();
  if (!width || !height) throw new Error('image has no dimensions');
  return { width, height };
}

/** Makes the pixels that look like the top-left corner transparent; the rest become opaque. */
export async function removeBackground(bytes: Buffer, format: ImageFormat): Promise<EncodedImage> {
  // 8-bit sRGB + alpha whatever the input (grey, 16-bit, CMYK), so the loop sees RGBA.
  const { data, info } = await sharp(bytes)
    .toColourspace('srgb')
    .ensureAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 4) throw new Error(`unexpected ${info.channels} channels`);

  const [r0 = 0, g0 = 0, b0 = 0] = data;
  const limit = BACKGROUND_DISTANCE * BACKGROUND_DISTANCE;
  for (let i = 0; i < data.length; i += 4) {
    const dr = data[i]! - r0;
    const dg = data[i + 1]! - g0;
    const db = data[i + 2]! - b0;
    // Already-transparent input pixels stay transparent: their colour means nothing.
    const background = dr * dr + dg * dg + db * db <= limit || data[i + 3] === 0;
    data[i + 3] = background ? 0 : 255;
  }

  const out = sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } });
  const encoded = format === 'webp' ? out.webp() : format === 'jpeg' ? out.jpeg() : out.png();
  return { body: await encoded.toBuffer(), contentType: `image/${format}` };
}

/** Resizes to exactly the target; WebP when the input has any alpha < 255, JPEG otherwise (as the real API). */
export async function upscale(bytes: Buffer, width: number, height: number): Promise<EncodedImage> {
  // stats().isOpaque is true both without an alpha channel and with an all-255 one.
  const { isOpaque } = await sharp(bytes).stats();
  const resized = sharp(bytes).resize(width, height, { fit: 'fill' });
  return isOpaque
    ? { body: await resized.jpeg().toBuffer(), contentType: 'image/jpeg' }
    : { body: await resized.webp().toBuffer(), contentType: 'image/webp' };
}
