/**
 * Source pictures: a character on a flat white background, which the ClipDrop stand-in can
 * cut out. Every job gets its own bytes (`variant`): the worker caches results by the
 * source's content, and a benchmark of cache hits would measure nothing.
 */
import sharp from 'sharp';

function shapes(width: number, height: number, head: string, body: string): string {
  return `<circle cx="${width / 2}" cy="${Math.round(height * 0.38)}" r="${Math.round(height * 0.2)}" fill="${head}"/>
  <rect x="${Math.round(width * 0.32)}" y="${Math.round(height * 0.55)}" width="${Math.round(width * 0.36)}"
        height="${Math.round(height * 0.42)}" rx="${Math.round(height * 0.05)}" fill="${body}"/>`;
}

function svg(width: number, height: number): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs>
    <radialGradient id="head" cx="45%" cy="40%" r="60%">
      <stop offset="0%" stop-color="#f5b041"/><stop offset="100%" stop-color="#943126"/>
    </radialGradient>
    <linearGradient id="body" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0%" stop-color="#2e86de"/><stop offset="100%" stop-color="#1b2631"/>
    </linearGradient>
  </defs>
  <rect width="100%" height="100%" fill="#ffffff"/>
  ${shapes(width, height, 'url(#head)', 'url(#body)')}
</svg>`);
}

/** A small PNG (128x96): the scenarios about the worker's own overhead use it. */
export function smallPicture(width = 128, height = 96): Promise<Buffer> {
  return sharp(svg(width, height)).png().toBuffer();
}

/**
 * A camera-sized JPEG (4000x3000 = 12 megapixels by default). The character is textured with
 * noise so that the images along the way weigh what a photo's would (here about 1 MB of
 * JPEG, an 8 MB cut-out PNG, a 6 MB result), not the few KB of flat colour.
 */
export async function largePicture(width = 4000, height = 3000): Promise<Buffer> {
  const mask = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#000"/>${shapes(width, height, '#fff', '#fff')}</svg>`,
  );
  const alpha = await sharp(mask).extractChannel(0).raw().toBuffer();
  const texture = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 128, sigma: 24 },
    },
  })
    .joinChannel(alpha, { raw: { width, height, channels: 1 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  return sharp(svg(width, height))
    .composite([{ input: texture, blend: 'soft-light' }])
    .jpeg({ quality: 90 })
    .toBuffer();
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The same picture with different bytes: a PNG tEXt chunk after IHDR, or a JPEG comment
 * after SOI, carrying `tag`. Pixels, and so the stand-in's work, are unchanged.
 */
export function variant(image: Buffer, tag: string): Buffer {
  const text = Buffer.from(`bench\0${tag}`, 'latin1');
  if (image.readUInt32BE(0) === 0x89504e47) {
    const type = Buffer.from('tEXt', 'latin1');
    const chunk = Buffer.alloc(12 + text.length);
    chunk.writeUInt32BE(text.length, 0);
    type.copy(chunk, 4);
    text.copy(chunk, 8);
    chunk.writeUInt32BE(crc32(Buffer.concat([type, text])), 8 + text.length);
    const afterIhdr = 8 + 8 + image.readUInt32BE(8) + 4;
    return Buffer.concat([image.subarray(0, afterIhdr), chunk, image.subarray(afterIhdr)]);
  }
  if (image[0] === 0xff && image[1] === 0xd8) {
    const segment = Buffer.alloc(4 + text.length);
    segment.writeUInt16BE(0xfffe, 0);
    segment.writeUInt16BE(text.length + 2, 2);
    text.copy(segment, 4);
    return Buffer.concat([image.subarray(0, 2), segment, image.subarray(2)]);
  }
  throw new Error('variant: not a PNG or JPEG');
}
