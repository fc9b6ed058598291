import { crc32, deflateSync } from 'node:zlib';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/**
 * A decompression bomb: a valid PNG header (correct CRCs) declaring `width` x `height` RGB
 * pixels, followed by a tiny IDAT. Decoding it would need width*height*3 bytes; reading its
 * header costs nothing. With `rows`, the IDAT holds that many real (black) rows, so a decoder
 * that ignores the header has actual work to do.
 */
export function pngBomb(width = 100_000, height = 100_000, rows = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const raw = Buffer.alloc(rows * (1 + width * 3)); // filter byte 0 + zeros, per row
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The first `fraction` of a file: a download cut short. */
export function truncated(file: Buffer, fraction = 0.5): Buffer {
  return file.subarray(0, Math.floor(file.length * fraction));
}

export const HTML_PAGE = Buffer.from(
  '<!doctype html><html><head><title>Sign in</title></head><body>Please sign in</body></html>',
);

export const SVG_IMAGE = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">' +
    '<image href="http://169.254.169.254/latest/meta-data/" width="64" height="64"/></svg>',
);
