// The drawing: the photo with the heatmap over it (or image | heatmap | overlay side by side),
// the colormap legend, and the PNG download. Reads the store, never writes it.

import { $, make } from './dom.js';
import { get, subscribe } from './store.js';
import { wasm, guard } from './core.js';

const DISPLAY_SIDE = 448; // the canvas shows the image at most this large per panel
// The download is at the photo's own size, up to what browsers can make a canvas of (Chrome and
// Firefox allow 32767 px a side and 268 MP in all, Safari 16384 px; photos are at most 100 MP).
const PNG_SIDE = 16384;
// The core colours the heatmap at up to this many pixels; a larger download gets it upscaled by
// the canvas, which for a map this smooth looks the same and keeps wasm memory small.
const HEATMAP_PIXELS = 1 << 22;

/// The heatmap coloured by the core, at `w x h`, on its own canvas.
function heatmapCanvas({ map, size }, w, h, cmap) {
  const rgba = wasm.renderHeatmap(map, size, w, h, cmap);
  const c = make('canvas', { width: w, height: h });
  c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), w, h), 0, 0);
  return c;
}

// The last heatmap coloured for the canvas: moving the opacity slider or changing the layout
// redraws without colouring the map again.
let heatCache = { map: null };
function cachedHeatmapCanvas(result, w, h, cmap) {
  const c = heatCache;
  if (c.map !== result.map || c.w !== w || c.h !== h || c.cmap !== cmap) heatCache = { map: result.map, w, h, cmap, canvas: heatmapCanvas(result, w, h, cmap) };
  return heatCache.canvas;
}

function drawOverlay(ctx, photo, x, w, h, heat, alpha) {
  ctx.drawImage(photo, x, 0, w, h);
  if (heat) {
    ctx.globalAlpha = alpha;
    ctx.drawImage(heat, x, 0, w, h);
    ctx.globalAlpha = 1;
  }
}

function draw() {
  const { image, result, view } = get();
  if (!image) return;
  const scale = Math.min(1, DISPLAY_SIDE / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale));
  const h = Math.max(1, Math.round(image.height * scale));
  const side = view.layout === 'side';
  const canvas = $('canvas');
  canvas.width = side ? 3 * w : w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const heat = result ? cachedHeatmapCanvas(result, w, h, view.cmap) : null;
  if (side) {
    ctx.drawImage(image.canvas, 0, 0, w, h);
    if (heat) ctx.drawImage(heat, w, 0);
    drawOverlay(ctx, image.canvas, 2 * w, w, h, heat, view.opacity);
  } else {
    drawOverlay(ctx, image.canvas, 0, w, h, heat, view.opacity);
  }
}

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

let legendCmap = null;
function drawLegend(cmap) {
  legendCmap = cmap;
  const legend = $('legend');
  const n = legend.width;
  const rgba = wasm.colormapStrip(cmap, n);
  const strip = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), n, 1);
  const ctx = legend.getContext('2d');
  for (let y = 0; y < legend.height; y++) ctx.putImageData(strip, 0, y);
}

/// Saves the overlay at the photo's own size: the photo is decoded again from its file, since the
/// page works on a copy of at most 1024 px.
async function downloadPng() {
  const { result, image, view } = get();
  if (!result || result.partial) return;
  // (a live camera frame has no file yet: its canvas)
  const photo = await createImageBitmap(image.blob ?? image.canvas, { imageOrientation: 'from-image' });
  const { width, height } = photo;
  const scale = Math.min(1, PNG_SIDE / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const c = make('canvas', { width: w, height: h });
  const ctx = c.getContext('2d');
  if (!ctx) {
    photo.close();
    throw new Error(`The browser could not make a ${w}x${h} image for the PNG (not enough memory).`);
  }
  const hs = Math.min(1, Math.sqrt(HEATMAP_PIXELS / (w * h)));
  const heat = heatmapCanvas(result, Math.max(1, Math.round(w * hs)), Math.max(1, Math.round(h * hs)), view.cmap);
  ctx.imageSmoothingQuality = 'high';
  drawOverlay(ctx, photo, 0, w, h, heat, view.opacity);
  photo.close();
  const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
  if (!blob) throw new Error(`The browser could not encode a ${w}x${h} PNG (not enough memory).`);
  const a = make('a', { href: URL.createObjectURL(blob), download: `scorecam-${result.explained.name.replace(/[^\w-]+/g, '_')}.png` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  if (scale < 1) $('copy-status').textContent = `Saved at ${w}x${h}: browsers make no image over ${PNG_SIDE} px a side (the photo is ${width}x${height}).`;
}

/// Draws from the store from now on (the legend needs the wasm module: call after the start).
export function init() {
  drawLegend(get().view.cmap);
  subscribe((s, changed) => {
    if (s.view.cmap !== legendCmap) drawLegend(s.view.cmap);
    // The finished map is drawn at once, so whoever sees `done` sees it on the canvas.
    if ('result' in changed && s.result && !s.result.partial) draw();
    else if ('image' in changed || 'result' in changed || 'view' in changed) scheduleDraw();
  });
  $('download').addEventListener('click', guard(downloadPng));
}
