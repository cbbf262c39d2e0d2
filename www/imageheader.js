// An image's size from its header, before anything decodes it: a few bytes can declare
// gigapixels (a decompression bomb), and the browser's decoder would allocate them all. The page
// reads the header of every image it is given (dropped, pasted, picked, fetched, or carried by a
// share link) and refuses what is too large before `createImageBitmap` sees it, as the CLI's
// decoder does (`image_input::decode`). Formats: what browsers decode for a page (PNG, JPEG,
// GIF, WebP, BMP, AVIF); anything else is not an image here.

export const FORMATS = 'PNG, JPEG, GIF, WebP, BMP or AVIF';

/// A header that cannot be read: `kind` is 'unknown' (no format this reads) or 'truncated'
/// (`format`'s signature, but no size in the bytes given).
export class ImageHeaderError extends Error {
  constructor(kind, format = null) {
    super(kind === 'unknown' ? `not an image of a format read here (${FORMATS})` : `a ${format} file without an image size in its header (truncated or corrupt)`);
    this.kind = kind;
    this.format = format;
  }
}

const be16 = (b, i) => (b[i] << 8) | b[i + 1];
const be32 = (b, i) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const le16 = (b, i) => b[i] | (b[i + 1] << 8);
const le24 = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const le32 = (b, i) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
const ascii = (b, i, n) => String.fromCharCode(...b.subarray(i, i + n));

function truncated(format) {
  return new ImageHeaderError('truncated', format);
}

function need(b, end, format) {
  if (b.length < end) throw truncated(format);
}

function png(b) {
  need(b, 24, 'PNG');
  if (ascii(b, 12, 4) !== 'IHDR') throw truncated('PNG');
  return { width: be32(b, 16), height: be32(b, 20) };
}

// Start-of-frame markers (baseline, progressive, lossless, arithmetic): C0-CF but not C4 (DHT),
// C8 (JPG) or CC (DAC).
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpeg(b) {
  let i = 2;
  for (;;) {
    need(b, i + 4, 'JPEG');
    if (b[i] !== 0xff) throw truncated('JPEG');
    const marker = b[i + 1];
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) throw truncated('JPEG'); // end of image, or scan data, before any frame
    const length = be16(b, i + 2);
    if (length < 2) throw truncated('JPEG');
    if (SOF.has(marker)) {
      need(b, i + 9, 'JPEG');
      return { width: be16(b, i + 7), height: be16(b, i + 5) };
    }
    i += 2 + length;
  }
}

function gif(b) {
  need(b, 10, 'GIF');
  return { width: le16(b, 6), height: le16(b, 8) };
}

function webp(b) {
  need(b, 30, 'WebP');
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8X') return { width: le24(b, 24) + 1, height: le24(b, 27) + 1 };
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) throw truncated('WebP');
    const bits = le32(b, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw truncated('WebP');
    return { width: le16(b, 26) & 0x3fff, height: le16(b, 28) & 0x3fff };
  }
  throw truncated('WebP');
}

function bmp(b) {
  need(b, 26, 'BMP');
  const header = le32(b, 14);
  if (header === 12) return { width: le16(b, 18), height: le16(b, 20) };
  // (height is negative for a top-down bitmap)
  return { width: Math.abs(le32(b, 18) | 0), height: Math.abs(le32(b, 22) | 0) };
}

/// AVIF (HEIF): the largest `ispe` (image spatial extent) property in meta/iprp/ipco.
function avif(b) {
  let best = null;
  const boxes = (from, to, path) => {
    let i = from;
    while (i + 8 <= to) {
      let size = be32(b, i);
      const type = ascii(b, i + 4, 4);
      let body = i + 8;
      if (size === 1) {
        need(b, i + 16, 'AVIF');
        if (be32(b, i + 8) !== 0) throw truncated('AVIF'); // over 4 GB
        size = be32(b, i + 12);
        body = i + 16;
      } else if (size === 0) {
        size = to - i;
      }
      if (size < body - i) throw truncated('AVIF');
      const end = Math.min(i + size, to);
      if (type === 'meta') boxes(body + 4, end, 'meta'); // a full box: version and flags first
      else if ((type === 'iprp' && path === 'meta') || (type === 'ipco' && path === 'iprp')) boxes(body, end, type);
      else if (type === 'ispe' && path === 'ipco') {
        need(b, body + 12, 'AVIF');
        const extent = { width: be32(b, body + 4), height: be32(b, body + 8) };
        if (!best || extent.width * extent.height > best.width * best.height) best = extent;
      }
      i += size;
    }
  };
  boxes(0, b.length, 'top');
  if (!best) throw truncated('AVIF');
  return best;
}

function format(b) {
  if (b.length >= 8 && be32(b, 0) === 0x89504e47 && be32(b, 4) === 0x0d0a1a0a) return ['PNG', png];
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return ['JPEG', jpeg];
  if (b.length >= 6 && /^GIF8[79]a$/.test(ascii(b, 0, 6))) return ['GIF', gif];
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return ['WebP', webp];
  if (b.length >= 2 && ascii(b, 0, 2) === 'BM') return ['BMP', bmp];
  if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp' && /^(avif|avis|mif1|msf1|heic|heix)$/.test(ascii(b, 8, 4))) return ['AVIF', avif];
  return null;
}

/// `{format, width, height}` from the first bytes of an image file (Uint8Array). Throws
/// ImageHeaderError: 'unknown' for bytes of no format above, 'truncated' when the header stops
/// before the size (a longer prefix of the file may hold it: a JPEG's metadata comes first).
export function imageSize(bytes) {
  const found = format(bytes);
  if (!found) throw new ImageHeaderError('unknown');
  const [name, read] = found;
  return { format: name, ...read(bytes) };
}
