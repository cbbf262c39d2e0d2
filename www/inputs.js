// Where images come from: a drop anywhere on the page, a paste, the file picker, the samples and
// URLs (?image=, a dropped link). The browser decodes them into a canvas of at most 1024 px.

import { $, make } from './dom.js';
import { get, set, newRun } from './store.js';
import { clearError, guard, showNotice } from './core.js';
import { analyseImage } from './explain.js';
import { isModelFile } from './ownmodel.js';
import { addOwnModel } from './model.js';
import { wantedOwnModel } from './share.js';
import { FORMATS, ImageHeaderError, imageSize } from './imageheader.js';
import { askToFetch, dismiss as dismissQuestion, needsConsent } from './consent.js';

const MAX_SIDE = 1024; // larger photos are scaled down before they enter wasm
const LIMITS = { bytes: 50e6, pixels: 100e6 }; // a dropped or fetched file; pixels as the core's decoder
// The header is looked for in this much of the file first (a JPEG's metadata, EXIF thumbnails
// and ICC profiles come before its size), then in the whole file.
const HEADER_BYTES = 1 << 20;

/// The browser could not decode the bytes as an image.
export class ImageDecodeError extends Error {}

/// The image's header declares more pixels than the page decodes.
export class ImageTooLargeError extends Error {}

/// `{width, height}` from the image's header, read before anything decodes it (a small file can
/// declare gigapixels, which the browser's decoder would allocate).
async function headerSize(blob, label) {
  let bytes = new Uint8Array(await blob.slice(0, HEADER_BYTES).arrayBuffer());
  for (;;) {
    try {
      return imageSize(bytes);
    } catch (err) {
      if (!(err instanceof ImageHeaderError)) throw err;
      if (err.kind === 'truncated' && bytes.length < blob.size) {
        bytes = new Uint8Array(await blob.arrayBuffer());
        continue;
      }
      if (err.kind === 'unknown') throw new ImageDecodeError(`${label} is not an image the page can read (${FORMATS}).`);
      throw new ImageDecodeError(`${label} is a ${err.format} file that is corrupt or truncated: its header gives no image size.`);
    }
  }
}

function checkPixels(label, width, height, format) {
  if (width && height && width * height <= LIMITS.pixels) return;
  const what = format ? `declares ${width}x${height} pixels in its ${format} header` : `has ${width}x${height} pixels`;
  throw new ImageTooLargeError(`${label} ${what}; the limit is ${LIMITS.pixels / 1e6} megapixels, so it was not decoded.`);
}

/// The image for the store: `blob` decoded with its EXIF orientation applied (as the CLI does),
/// scaled to at most MAX_SIDE; the blob is kept for the full-size PNG download. The size limits
/// are checked first: the file's bytes, then the pixels its header declares.
async function decode(blob, source) {
  const label = source.label ?? (source.kind === 'url' ? `“${source.url}”` : blob.name ? `“${blob.name}”` : 'This file');
  if (blob.size > LIMITS.bytes) throw new Error(`${label} is ${(blob.size / 1e6).toFixed(0)} MB; the limit is ${LIMITS.bytes / 1e6} MB.`);
  const header = await headerSize(blob, label);
  checkPixels(label, header.width, header.height, header.format);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new ImageDecodeError(`${label} is not an image the browser can decode (corrupt, truncated or not an image).`);
  }
  const { width, height } = bitmap;
  try {
    checkPixels(label, width, height); // (a header that lied)
  } catch (err) {
    bitmap.close();
    throw err;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  const canvas = make('canvas', { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return { canvas, width: canvas.width, height: canvas.height, blob, source };
}

async function fetchImage(url) {
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    throw new Error('The image address is not a valid URL.');
  }
  if (!['http:', 'https:'].includes(parsed.protocol)) throw new Error('Only http and https image addresses are allowed.');
  // (The CSP allows no other: plain http from another server would reach intranet hosts.)
  if (parsed.origin !== location.origin && parsed.protocol !== 'https:') throw new Error(`Images from other servers are loaded over https only: ${parsed.href} is not.`);
  let res;
  try {
    res = await fetch(parsed, { mode: 'cors', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch {
    throw new Error(`Could not fetch ${parsed.href}: the server must allow cross-origin requests (CORS).`);
  }
  if (!res.ok) throw new Error(`Could not fetch ${parsed.href}: HTTP ${res.status}.`);
  const tooLarge = () => new Error(`The image at ${parsed.href} is larger than ${LIMITS.bytes / 1e6} MB.`);
  if (Number(res.headers.get('content-length') ?? 0) > LIMITS.bytes) throw tooLarge();
  // Read up to the limit, whatever the server said the length was (or did not say).
  const parts = [];
  let received = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.length;
    if (received > LIMITS.bytes) {
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  return { blob: new Blob(parts, { type: res.headers.get('content-type') ?? '' }), href: parsed.href };
}

let asked = 0; // images asked for so far
let shown = 0; // the newest of them shown: one asked for earlier that decodes later is dropped

/// A new image from `load()`: explains `classIndex`, by default its own top class (not the
/// previous image's). Only a decoded image cancels the running explanation: a file that fails to
/// load leaves the previous image, its result and any run in progress as they were.
async function showImage(load, { classIndex = null } = {}) {
  const mine = ++asked;
  dismissQuestion(); // a link's image still waiting for a yes is not wanted now
  clearError();
  set({ page: 'explaining' });
  let image;
  try {
    image = await load();
  } catch (err) {
    if (mine > shown) throw err; // (else a newer image is already shown: this one is moot)
    return;
  }
  if (mine < shown) return;
  shown = mine;
  newRun(); // a new image cancels the running explanation
  set({ image, top5: [], result: null, progress: null, classIndex });
  await analyseImage();
}

export function setImageBlob(blob, source, options) {
  return showImage(() => decode(blob, source), options);
}

export function setImageUrl(url, options) {
  return showImage(async () => {
    const { blob, href } = await fetchImage(url);
    return decode(blob, { kind: 'url', url: href });
  }, options);
}

/// An image URL that came from a link (`?image=`, a share link's `src`): fetched once the visitor
/// says yes to its host (www/consent.js), at once from this page's own origin. Resolves to
/// whether it was loaded; a no leaves the page ready for another image.
export async function setLinkedImageUrl(url, options) {
  if (needsConsent(url)) {
    set({ page: 'ready' }); // waiting for the visitor, who may drop an image instead
    if (!(await askToFetch(url))) {
      if (get().page === 'ready') showNotice(`The image from ${new URL(url, location.href).host} was not loaded. Drop an image, paste one, or pick a sample.`);
      return false;
    }
  }
  await setImageUrl(url, options);
  return true;
}

async function fillGallery() {
  const res = await fetch('www/samples/index.json');
  if (!res.ok) return;
  const { samples } = await res.json();
  $('gallery').replaceChildren(...samples.map((s) => {
    const img = make('img', { src: `www/samples/${encodeURIComponent(s.file)}`, alt: s.title });
    const b = make('button', { type: 'button', title: s.title });
    b.append(img);
    b.addEventListener('click', guard(() => setImageUrl(img.src)));
    return b;
  }));
}

/// A file the visitor dropped, picked or pasted: an ONNX model is brought in (and, where a share
/// link waits for that file, the link's explanation opened), anything else is an image.
async function takeFile(file) {
  if (!(await isModelFile(file))) return setImageBlob(file, { kind: 'bytes' });
  const wanted = wantedOwnModel();
  if (wanted) return wanted.take(file);
  return addOwnModel(file).catch((err) => {
    if (err?.name !== 'AbortError') throw err;
  });
}

export function init() {
  $('pick-file').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', guard((e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) return takeFile(file);
  }));
  // Drop anywhere on the page.
  window.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  window.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) document.body.classList.remove('dragging');
  });
  window.addEventListener('drop', guard((e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer?.files?.[0];
    if (file) return takeFile(file);
    const url = e.dataTransfer?.getData('text/uri-list') || e.dataTransfer?.getData('text/plain');
    if (url) return setImageUrl(url.trim().split('\n')[0]);
    throw new Error('Nothing to explain in what was dropped: drop an image file, or an ONNX model.');
  }));
  window.addEventListener('paste', guard((e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
    if (item) return takeFile(item.getAsFile());
  }));
  fillGallery().catch((e) => console.warn('gallery:', e));
}
