// Small canvas drawings for the teaching views: a map in grey or in colour over the photo, a
// scatter plot and line plots. Numbers come from the core; this only draws them.

import { make } from './dom.js';
import { wasm } from './core.js';

/// RGBA bytes as a `w x h` canvas.
export function rgbaCanvas(rgba, w, h) {
  const c = make('canvas', { width: w, height: h });
  c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, w * h * 4), w, h), 0, 0);
  return c;
}

/// A `w x h` float map in grey, min-max normalised (a constant map is mid grey).
export function greyCanvas(values, w, h) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const g = span > 0 ? Math.round(((values[i] - lo) / span) * 255) : 128;
    rgba.set([g, g, g, 255], i * 4);
  }
  return rgbaCanvas(rgba, w, h);
}

/// Draws `source` onto `target` (resized to fit it), without smoothing when `pixelated`.
export function drawScaled(target, source, { pixelated = false } = {}) {
  const ctx = target.getContext('2d');
  ctx.imageSmoothingEnabled = !pixelated;
  ctx.clearRect(0, 0, target.width, target.height);
  ctx.drawImage(source, 0, 0, target.width, target.height);
}

/// The photo with `map` (`size x size`, in [0, 1]) coloured over it, on `target`.
export function drawOverlay(target, photo, map, size, cmap, opacity = 0.5) {
  const { width: w, height: h } = target;
  const ctx = target.getContext('2d');
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(photo, 0, 0, w, h);
  if (!map) return;
  const heat = rgbaCanvas(wasm.renderHeatmap(map, size, w, h, cmap), w, h);
  ctx.globalAlpha = opacity;
  ctx.drawImage(heat, 0, 0);
  ctx.globalAlpha = 1;
}

/// Sizes `canvas` to the photo's aspect ratio within `side` pixels.
export function fitToPhoto(canvas, image, side) {
  const scale = side / Math.max(image.width, image.height);
  canvas.width = Math.max(1, Math.round(image.width * scale));
  canvas.height = Math.max(1, Math.round(image.height * scale));
}

const PAD = { left: 48, right: 12, top: 12, bottom: 34 };

function frame(canvas, { xLabel, yLabel, x0, x1, y0, y1, x1Text = null }) {
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#5f6670';
  ctx.strokeStyle = '#b8bec9';
  ctx.lineWidth = 1;
  ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, w - PAD.left - PAD.right, h - PAD.top - PAD.bottom);
  const fmt = (v) => (Math.abs(v) >= 100 || v === 0 ? String(Math.round(v)) : v.toPrecision(2));
  ctx.textAlign = 'center';
  ctx.fillText(fmt(x0), PAD.left, h - PAD.bottom + 13);
  ctx.fillText(x1Text ?? fmt(x1), w - PAD.right, h - PAD.bottom + 13);
  ctx.fillText(xLabel, (PAD.left + w - PAD.right) / 2, h - 4);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(y1), PAD.left - 4, PAD.top + 9);
  ctx.fillText(fmt(y0), PAD.left - 4, h - PAD.bottom);
  ctx.save();
  ctx.translate(11, (PAD.top + h - PAD.bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * (w - PAD.left - PAD.right);
  const sy = (y) => h - PAD.bottom - ((y - y0) / (y1 - y0 || 1)) * (h - PAD.top - PAD.bottom);
  return { ctx, sx, sy };
}

/// A scatter plot of `points` ({x, y, highlight, selected}); returns the point nearest a click
/// (within 8 px), for `canvas` coordinates.
export function scatter(canvas, points, { xLabel, yLabel }) {
  // The data's own range, padded by 5%: scores can differ only in their third digit.
  const range = (vs) => {
    const lo = Math.min(...vs);
    const hi = Math.max(...vs);
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.05;
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = range(points.map((p) => p.x));
  const [y0, y1] = range(points.map((p) => p.y));
  const { ctx, sx, sy } = frame(canvas, { xLabel, yLabel, x0, x1, y0, y1 });
  if (x0 < 0) {
    ctx.strokeStyle = '#dde1e8';
    ctx.beginPath();
    ctx.moveTo(sx(0), sy(y0));
    ctx.lineTo(sx(0), sy(y1));
    ctx.stroke();
  }
  const order = [...points].sort((a, b) => Number(Boolean(a.highlight)) - Number(Boolean(b.highlight)));
  for (const p of order) {
    ctx.fillStyle = p.highlight ? '#c8102e' : '#2455c399';
    ctx.beginPath();
    ctx.arc(sx(p.x), sy(p.y), p.highlight ? 4 : 2.5, 0, 2 * Math.PI);
    ctx.fill();
    if (p.selected) {
      ctx.strokeStyle = '#1d1f23';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(sx(p.x), sy(p.y), 7, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.lineWidth = 1;
    }
  }
  return (cx, cy) => {
    let best = null;
    let bestD = 64;
    for (const p of points) {
      const d = (sx(p.x) - cx) ** 2 + (sy(p.y) - cy) ** 2;
      if (d < bestD) {
        best = p;
        bestD = d;
      }
    }
    return best;
  };
}

/// Curves over [0, 1] (`series`: {values (NaN: not computed yet), colour, dashed, label}), with a
/// vertical marker at `marker` (a share of the x axis) if given; `x1Text`: the right end's label;
/// `legendAt`: 'top' or 'bottom' (inside the plot, on the left).
export function lines(canvas, series, { xLabel, yLabel, marker = null, x1Text = null, legendAt = 'top' }) {
  const { ctx, sx, sy } = frame(canvas, { xLabel, yLabel, x0: 0, x1: 1, y0: 0, y1: 1, x1Text });
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = s.dashed ? 1.5 : 2;
    ctx.setLineDash(s.dashed ? [5, 4] : []);
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      const x = sx(i / Math.max(1, s.values.length - 1));
      if (pen) ctx.lineTo(x, sy(v));
      else ctx.moveTo(x, sy(v));
      pen = true;
    });
    ctx.stroke();
    if (s.dots) {
      ctx.fillStyle = s.colour;
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) return;
        ctx.beginPath();
        ctx.arc(sx(i / Math.max(1, s.values.length - 1)), sy(v), 3, 0, 2 * Math.PI);
        ctx.fill();
      });
    }
  }
  ctx.setLineDash([]);
  if (marker !== null) {
    ctx.strokeStyle = '#1d1f23';
    ctx.beginPath();
    ctx.moveTo(sx(marker), sy(0));
    ctx.lineTo(sx(marker), sy(1));
    ctx.stroke();
  }
  // legend
  ctx.textAlign = 'left';
  series.forEach((s, i) => {
    ctx.fillStyle = s.colour;
    const y = legendAt === 'top' ? PAD.top + 14 + 13 * i : canvas.height - PAD.bottom - 8 - 13 * (series.length - 1 - i);
    ctx.fillText(s.label, PAD.left + 8, y);
  });
}
