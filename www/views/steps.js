// Step by step (the paper's Figure 2): every activation map of the target layer as a grid of
// thumbnails, constant ones greyed (Score-CAM skips them); for the chosen channel its mask, the
// masked input the network saw and that input's score; and a build-up slider that draws the map
// from the n highest-contributing channels. Everything shown is what the explanation computed:
// no extra forward pass.

import { $ } from '../dom.js';
import { get, set } from '../store.js';
import { guard, fail } from '../core.js';
import { activations, channelView, finished, isScoreCam, mapFromChannels } from '../teachdata.js';
import { drawOverlay, drawScaled, fitToPhoto, greyCanvas, rgbaCanvas } from '../plot.js';
import { showBody } from './panel.js';

const GRID_WIDTH = 720; // the thumbnail grid's width in pixels, at most

let shown = null; // {result, acts, order, cols, cell, contributions}

const setTeach = (patch) => set({ teach: { ...get().teach, ...patch } });

/// A channel's contribution to the map: its weight times its mean activation (the weighted sum is
/// linear, so this is the channel's share of the map's total before the ReLU).
function contributions(result, acts) {
  const plane = acts.height * acts.width;
  return result.channels.map((c) => {
    let sum = 0;
    for (let i = c.channel * plane; i < (c.channel + 1) * plane; i++) sum += acts.data[i];
    return c.weight * (sum / plane);
  });
}

function sortedOrder(result, contrib, sort) {
  const order = result.channels.map((c) => c.channel);
  const score = (k) => result.channels[k].score ?? -Infinity;
  if (sort === 'score') order.sort((a, b) => score(b) - score(a) || a - b);
  else if (sort === 'contribution') order.sort((a, b) => contrib[b] - contrib[a] || a - b);
  return order;
}

/// The scored channels from the highest contribution down (the build-up's order).
function buildUpOrder(result, contrib) {
  return result.channels.filter((c) => c.score !== null).map((c) => c.channel).sort((a, b) => contrib[b] - contrib[a] || a - b);
}

/// The thumbnails in the current order, drawn once per explanation and order (`shown.base`).
function thumbnails() {
  const { result, acts, order, cols, cell } = shown;
  const base = document.createElement('canvas');
  base.width = cols * cell;
  base.height = Math.ceil(order.length / cols) * cell;
  const ctx = base.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, base.width, base.height);
  const plane = acts.height * acts.width;
  order.forEach((k, i) => {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    if (acts.constant[k]) {
      ctx.fillStyle = '#d9dce1';
      ctx.fillRect(x, y, cell - 1, cell - 1);
      ctx.strokeStyle = '#aab0ba';
      ctx.beginPath();
      ctx.moveTo(x, y + cell - 1);
      ctx.lineTo(x + cell - 1, y);
      ctx.stroke();
    } else {
      ctx.drawImage(greyCanvas(acts.data.subarray(k * plane, (k + 1) * plane), acts.width, acts.height), x, y, cell - 1, cell - 1);
      if (result.channels[k].score === null) {
        ctx.fillStyle = '#ffffffaa'; // not scored (top-k)
        ctx.fillRect(x, y, cell - 1, cell - 1);
      }
    }
  });
  return base;
}

/// The grid: the thumbnails, and the chosen channel outlined.
function drawGrid() {
  const { order, cols, cell } = shown;
  shown.base ??= thumbnails();
  const grid = $('steps-grid');
  grid.width = shown.base.width;
  grid.height = shown.base.height;
  const ctx = grid.getContext('2d');
  ctx.drawImage(shown.base, 0, 0);
  const i = order.indexOf(get().teach.channel);
  if (i < 0) return;
  ctx.strokeStyle = '#2455c3';
  ctx.lineWidth = 3;
  ctx.strokeRect((i % cols) * cell + 1.5, Math.floor(i / cols) * cell + 1.5, cell - 4, cell - 4);
}

async function showChannel() {
  const { result, acts, order, contrib } = shown;
  const { teach } = get();
  const k = teach.channel;
  const rec = result.channels[k];
  const plane = acts.height * acts.width;
  drawScaled($('steps-act'), greyCanvas(acts.data.subarray(k * plane, (k + 1) * plane), acts.width, acts.height), { pixelated: true });
  const rank = order.indexOf(k) + 1;
  const name = result.explained.name;
  const lines = [
    ['Channel', `${k} (${rank} of ${order.length} by ${teach.sort})`],
    ['Activation map', `${acts.width}x${acts.height}${rec.constant ? ', constant: skipped, no forward pass' : ''}`],
    ['Score', rec.score === null ? 'not scored' : `${result.method === 'scorecam' ? 'p' : 'logit'}(${name}) = ${rec.score.toPrecision(4)} on the masked input`],
    ['Weight in the map', rec.weight.toPrecision(4)],
    ['Contribution', contrib[k].toPrecision(4)],
  ];
  $('steps-numbers').replaceChildren(...lines.flatMap(([dt, dd]) => [Object.assign(document.createElement('dt'), { textContent: dt }), Object.assign(document.createElement('dd'), { textContent: dd })]));
  $('steps-live').textContent = `Channel ${k}: ${lines[2][1]}`;
  const view = await channelView(result, k);
  if (shown?.result !== result || get().teach.channel !== k) return;
  drawScaled($('steps-mask'), greyCanvas(view.mask, view.size, view.size));
  drawScaled($('steps-masked'), rgbaCanvas(view.masked, view.size, view.size));
}

let buildToken = 0;
async function showBuildUp() {
  const { result, contrib } = shown;
  const ranked = buildUpOrder(result, contrib);
  const slider = $('buildup');
  slider.max = String(Math.max(1, ranked.length));
  const n = Math.min(get().teach.n ?? ranked.length, ranked.length);
  slider.value = String(n);
  $('buildup-n').textContent = `${n} of ${ranked.length}`;
  const mine = ++buildToken;
  const map = await mapFromChannels(result, new Set(ranked.slice(0, n)));
  if (mine !== buildToken || shown?.result !== result) return;
  const { image, view } = get();
  const canvas = $('buildup-canvas');
  fitToPhoto(canvas, image, 320);
  drawOverlay(canvas, image.canvas, map, result.size, view.cmap, view.opacity);
}

/// Checks a lesson's channel and build-up count against this explanation.
function validateLesson(result, teach) {
  const channels = result.channels?.length ?? 0;
  if (teach.channel !== null && teach.channel >= channels) throw new Error(`This lesson link names channel ${teach.channel}, but the target layer has ${channels} channels.`);
  const scored = (result.channels ?? []).filter((c) => c.score !== null).length;
  if (teach.n !== null && (teach.n < 1 || teach.n > scored)) throw new Error(`This lesson link builds the map from ${teach.n} channels, but this explanation scored ${scored}.`);
}

export async function render(changed) {
  const result = finished();
  const ok = Boolean(isScoreCam(result) && result.channels?.length);
  if (!showBody('steps', ok, result ? 'The step by step view shows Score-CAM: choose Score-CAM under Method options.' : 'Explain an image to see its steps.')) {
    shown = null;
    return;
  }
  if (shown?.result !== result) {
    const acts = await activations(result);
    if (finished() !== result) return;
    try {
      validateLesson(result, get().teach);
    } catch (err) {
      fail(err);
      setTeach({ channel: null, n: null });
      return;
    }
    const contrib = contributions(result, acts);
    const cols = Math.min(acts.channels, Math.ceil(Math.sqrt(acts.channels * 2.5)));
    const cell = Math.max(10, Math.min(48, Math.floor(GRID_WIDTH / cols)));
    shown = { result, acts, contrib, cols, cell, order: sortedOrder(result, contrib, get().teach.sort) };
    const constant = result.channels.filter((c) => c.constant).length;
    const scored = result.channels.filter((c) => c.score !== null).length;
    $('steps-summary').textContent = `${acts.channels} activation maps of ${acts.width}x${acts.height} at the target layer; ${constant} constant (greyed: skipped), ${scored} scored, each with one masked forward pass.`;
    if (get().teach.channel === null) setTeach({ channel: shown.order[0] });
    changed = null;
  }
  const { teach } = get();
  $('steps-sort').value = teach.sort;
  if (!changed || changed.sort) {
    shown.order = sortedOrder(result, shown.contrib, teach.sort);
    shown.base = null;
  }
  if (!changed || changed.sort || changed.channel) {
    drawGrid();
    performance.mark('scorecam:thumbnails'); // the first thumbnails' time (tests/e2e/teach_cost.mjs)
    await showChannel();
  }
  if (!changed || changed.n || changed.view) await showBuildUp();
}

function moveSelection(delta) {
  if (!shown) return;
  const { order } = shown;
  const i = order.indexOf(get().teach.channel);
  const next = Math.max(0, Math.min(order.length - 1, i + delta));
  setTeach({ channel: order[next] });
}

export function init() {
  $('steps-sort').addEventListener('change', (e) => setTeach({ sort: e.target.value }));
  const grid = $('steps-grid');
  grid.addEventListener('click', (e) => {
    if (!shown) return;
    const r = grid.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) * grid.width) / r.width / shown.cell);
    const y = Math.floor(((e.clientY - r.top) * grid.height) / r.height / shown.cell);
    const k = shown.order[y * shown.cols + x];
    if (k !== undefined) setTeach({ channel: k });
  });
  grid.addEventListener('keydown', (e) => {
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -shown?.cols, ArrowDown: shown?.cols, Home: -Infinity, End: Infinity }[e.key];
    if (step === undefined || !shown) return;
    e.preventDefault();
    moveSelection(Number.isFinite(step) ? step : step < 0 ? -shown.order.length : shown.order.length);
  });
  $('buildup').addEventListener('input', guard((e) => setTeach({ n: Number(e.target.value) })));
}
