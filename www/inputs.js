// Where images come from: a drop anywhere on the page, a paste, the file picker, the samples and
// URLs (?image=, a dropped link). The browser decodes them into a canvas of at most 1024 px.

import { $, make } from './dom.js';
import { set, newRun } from './store.js';
import { clearError, guard } from './core.js';
import { analyseImage } from './explain.js';
import { isModelFile } from './ownmodel.js';
import { addOwnModel } from './model.js';
import { wantedOwnModel } from './share.js';

const MAX_SIDE = 1024; // larger photos are scaled down before they enter wasm
const LIMITS = { bytes: 50e6, pixels: 100e6 }; // a dropped or fetched file; pixels as the core's decoder

/// The browser could not decode the bytes as an image.
export class ImageDecodeError extends Error {}

/// The image for the store: `blob` decoded with its EXIF orientation applied (as the CLI does),
/// scaled to at most MAX_SIDE; the blob is kept for the full-size PNG download.
async function decode(blob, source) {
  const label = source.kind === 'url' ? `“${source.url}”` : blob.name ? `“${blob.name}”` : 'This file';
  if (blob.size > LIMITS.bytes) throw new Error(`${label} is ${(blob.size / 1e6).toFixed(0)} MB; the limit is ${LIMITS.bytes / 1e6} MB.`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new ImageDecodeError(`${label} is not an image the browser can decode (corrupt, truncated or not an image).`);
  }
  const { width, height } = bitmap;
  if (!width || !height || width * height > LIMITS.pixels) {
    bitmap.close();
    throw new Error(`${label} has ${width}x${height} pixels; the limit is ${LIMITS.pixels / 1e6} megapixels.`);
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
  let res;
  try {
    res = await fetch(parsed, { mode: 'cors', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch {
    throw new Error(`Could not fetch ${parsed.href}: the server must allow cross-origin requests (CORS).`);
  }
  if (!res.ok) throw new Error(`Could not fetch ${parsed.href}: HTTP ${res.status}.`);
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > LIMITS.bytes) throw new Error(`The image at ${parsed.href} is larger than ${LIMITS.bytes / 1e6} MB.`);
  return { blob: await res.blob(), href: parsed.href };
}

let latest = 0; // the newest image asked for: one asked for earlier and still loading is dropped

/// A new image from `load()`: explains `classIndex`, by default its own top class (not the
/// previous image's).
async function showImage(load, { classIndex = null } = {}) {
  const mine = ++latest;
  newRun(); // a new image cancels the running explanation
  clearError();
  set({ page: 'explaining' });
  let image;
  try {
    image = await load();
  } catch (err) {
    if (mine === latest) throw err;
    return;
  }
  if (mine !== latest) return;
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
