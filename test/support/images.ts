import sharp from 'sharp';

/**
 * A test picture the ClipDrop stand-in can cut out: a coloured disc on a flat white
 * background (the stand-in treats pixels close to the corner colour as background).
 */
export async function characterPicture(
  width = 64,
  height = 48,
  format: 'png' | 'jpeg' = 'png',
  /** Varies the disc's colour, so each picture has different bytes. */
  variant = 0,
): Promise<Buffer> {
  const colour = `#${(0xc0392b + variant * 0x010305).toString(16).slice(-6).padStart(6, '0')}`;
  const r = Math.floor(Math.min(width, height) / 3);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#ffffff"/>
    <circle cx="${width / 2}" cy="${height / 2}" r="${r}" fill="${colour}"/>
  </svg>`;
  const image = sharp(Buffer.from(svg));
  return format === 'png' ? image.png().toBuffer() : image.jpeg().toBuffer();
}
