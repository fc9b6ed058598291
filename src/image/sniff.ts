/**
 * What a source file is, by its first bytes (never by a Content-Type header or a file name).
 * Only raster formats are accepted: SVG (a text format that can reference other resources),
 * PDF, HTML and everything else is not an image to us, and never reaches a decoder.
 */
export type SourceFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'avif' | 'heif' | 'tiff';

/** The formats accepted as sources, by the name sharp's `metadata().format` gives them. */
export const SHARP_FORMATS: Readonly<Record<SourceFormat, string>> = {
  png: 'png',
  jpeg: 'jpeg',
  webp: 'webp',
  gif: 'gif',
  avif: 'heif',
  heif: 'heif',
  tiff: 'tiff',
};

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function sniffImage(data: Buffer): SourceFormat | undefined {
  if (startsWith(data, PNG)) return 'png';
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (ascii(data, 0, 4) === 'RIFF' && ascii(data, 8, 12) === 'WEBP') return 'webp';
  const gif = ascii(data, 0, 6);
  if (gif === 'GIF87a' || gif === 'GIF89a') return 'gif';
  const tiff = data.length >= 4 ? data.toString('hex', 0, 4) : '';
  if (tiff === '49492a00' || tiff === '4d4d002a') return 'tiff';
  return isoBrand(data);
}

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/** An ISO-BMFF `ftyp` box naming an AVIF or HEIF brand, major or compatible. */
function isoBrand(data: Buffer): 'avif' | 'heif' | undefined {
  if (data.length < 16 || ascii(data, 4, 8) !== 'ftyp') return undefined;
  const boxSize = Math.min(data.readUInt32BE(0), data.length, 64);
  const brands: string[] = [];
  for (let at = 8; at + 4 <= boxSize; at += 4) {
    if (at !== 12) brands.push(ascii(data, at, at + 4)); // 12: minor_version, not a brand
  }
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heif';
  return undefined;
}

function startsWith(data: Buffer, magic: Buffer): boolean {
  return data.length >= magic.length && data.subarray(0, magic.length).equals(magic);
}

function ascii(data: Buffer, start: number, end: number): string {
  return data.length >= end ? data.toString('latin1', start, end) : '';
}
