// Is the map faithful? RISE's deletion and insertion curves of the shown map, drawn as their
// forward passes finish (on every worker), with a scrubber that shows the perturbed image at each
// step; the two AUCs, and Average Drop / Increase under the paper's and the libraries' protocols.
// Same definitions and code as `scorecam eval`. Grad-CAM's and Grad-CAM++'s curves can be added
// for comparison.

import { $ } from '../dom.js';
import { get, set } from '../store.js';
import { session, fail, guard } from '../core.js';
import { COMPARED, comparison, curves, dropIncrease, finished } from '../teachdata.js';
import { lines } from '../plot.js';
import { showBody } from './panel.js';

const COLOURS = { deletion: '#c8102e', insertion: '#2455c3' };
const NAMES = { gradcam: 'Grad-CAM', gradcampp: 'Grad-CAM++' };

let shown = null; // {result, partial, done, others: {method: partial}}
let token = 0;

const setTeach = (patch) => set({ teach: { ...get().teach, ...patch } });

function redraw() {
  if (!shown?.partial) return;
  const { teach } = get();
  const n = shown.partial.deletion.length;
  const series = ['deletion', 'insertion'].map((kind) => ({ values: shown.partial[kind], colour: COLOURS[kind], label: `${kind}${shown.done ? ` (AUC ${shown.done[kind].auc.toFixed(3)})` : ''}` }));
  for (const [method, partial] of Object.entries(shown.others)) {
    for (const kind of ['deletion', 'insertion']) series.push({ values: partial[kind], colour: COLOURS[kind], dashed: true, label: `${NAMES[method]} ${kind}${partial.auc ? ` (AUC ${partial.auc[kind].toFixed(3)})` : ''}` });
  }
  lines($('faithful-plot'), series, { xLabel: 'share of pixels deleted / inserted, most salient first', yLabel: `p(${shown.result.explained.name})`, marker: teach.t / Math.max(1, n - 1), x1Text: '100%' });
  const slider = $('curve-step');
  slider.max = String(n - 1);
  slider.value = String(Math.min(teach.t, n - 1));
  $('curve-kind').value = teach.curve;
  drawPerturbed();
}

/// The network's view at step t: the most salient t*step pixels deleted (set to the mean colour,
/// the network's zero) or inserted into the blurred image. The picture is for the eye (the
/// browser resizes and blurs it); the probabilities are the core's.
function drawPerturbed() {
  const { result } = shown;
  const { teach, image } = get();
  const size = result.size;
  const n = shown.partial.deletion.length;
  const t = Math.min(teach.t, n - 1);
  const step = Math.ceil((size * size) / Math.max(1, n - 1));
  shown.order ??= Array.from({ length: size * size }, (_, i) => i).sort((a, b) => result.map[b] - result.map[a]);
  const canvas = $('curve-image');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.filter = 'none';
  ctx.drawImage(image.canvas, 0, 0, size, size);
  const photo = ctx.getImageData(0, 0, size, size);
  let base;
  if (teach.curve === 'deletion') {
    shown.mean ??= normalisationMean().map((m) => Math.round(m * 255));
    const { mean } = shown;
    base = new ImageData(size, size);
    for (let i = 0; i < size * size; i++) base.data.set([...mean, 255], 4 * i);
  } else {
    ctx.filter = `blur(${Math.max(1, (5 * size) / 224)}px)`;
    ctx.drawImage(image.canvas, 0, 0, size, size);
    ctx.filter = 'none';
    base = ctx.getImageData(0, 0, size, size);
  }
  // deletion: photo pixels stay except the first t*step; insertion: base except the first t*step
  const changed = Math.min(size * size, t * step);
  const out = teach.curve === 'deletion' ? photo : base;
  const from = teach.curve === 'deletion' ? base : photo;
  for (const p of shown.order.slice(0, changed)) out.data.set(from.data.subarray(4 * p, 4 * p + 4), 4 * p);
  ctx.putImageData(out, 0, 0);
  const v = shown.partial[teach.curve][t];
  const share = ((100 * changed) / (size * size)).toFixed(0);
  $('curve-caption').textContent = `Step ${t} of ${n - 1}: ${share}% of the pixels ${teach.curve === 'deletion' ? 'deleted' : 'inserted'}, p(${result.explained.name}) = ${Number.isFinite(v) ? v.toFixed(3) : '…'}`;
}

function normalisationMean() {
  try {
    return JSON.parse(session.modelFile()[0]).normalisation.mean;
  } catch {
    return [0.5, 0.5, 0.5];
  }
}

function summarise() {
  const { done, adi } = shown;
  const parts = [];
  if (done) parts.push(`Deletion AUC ${done.deletion.auc.toFixed(4)} (lower is better), insertion AUC ${done.insertion.auc.toFixed(4)} (higher is better).`);
  else parts.push(`Computing the curves: ${Math.round(100 * shown.progress)}%…`);
  if (adi) {
    const d = (x) => `Average Drop ${x.drop.toFixed(1)}%, Increase ${x.increase ? 'yes' : 'no'} (p ${x.probability.toFixed(3)} → ${x.masked_probability.toFixed(3)})`;
    parts.push(`Keeping the top half of the map (the paper): ${d(adi.paper)}. Image times map (the libraries): ${d(adi.library)}.`);
  }
  $('faithful-summary').textContent = parts.join(' ');
  $('compare-curves').disabled = !done || Object.keys(shown.others).length > 0;
}

export async function render(changed) {
  const result = finished();
  if (!showBody('faithful', Boolean(result), 'Explain an image first.')) {
    shown = null;
    return;
  }
  if (shown?.result === result) {
    if (changed) redraw();
    return;
  }
  const mine = ++token;
  shown = { result, partial: null, done: null, adi: null, others: {}, progress: 0 };
  delete $('faithful-plot').dataset.compared;
  try {
    const onPoints = (partial) => {
      if (mine !== token) return;
      const n = partial.deletion.length;
      if (!shown.partial && get().teach.t >= n) {
        fail(new Error(`This link scrubs the curve to step ${get().teach.t}, but the curves have ${n - 1} steps.`));
        setTeach({ t: 0 });
      }
      shown.partial = partial;
      const all = [...partial.deletion, ...partial.insertion];
      shown.progress = all.filter(Number.isFinite).length / all.length;
      summarise();
      redraw();
    };
    const promise = curves(result, { onPoints });
    shown.done = await promise;
    if (mine !== token) return;
    shown.adi = await dropIncrease(result);
    if (mine !== token) return;
    summarise();
    redraw();
  } catch (err) {
    if (err?.name !== 'AbortError') fail(err);
  }
}

async function compare() {
  const { result } = shown;
  $('faithful-plot').dataset.compared = 'running';
  const mine = token;
  const cmp = await comparison(result);
  for (const method of COMPARED) {
    const target = cmp[method];
    const done = await curves(result, {
      target,
      onPoints: (partial) => {
        if (mine !== token) return;
        shown.others[method] = { deletion: partial.deletion, insertion: partial.insertion };
        redraw();
      },
    });
    if (mine !== token) return;
    shown.others[method].auc = { deletion: done.deletion.auc, insertion: done.insertion.auc };
    redraw();
  }
  $('faithful-plot').dataset.compared = 'done';
}

export function init() {
  $('curve-step').addEventListener('input', (e) => setTeach({ t: Number(e.target.value) }));
  $('curve-kind').addEventListener('change', (e) => setTeach({ curve: e.target.value }));
  $('compare-curves').addEventListener('click', guard(async () => {
    $('compare-curves').disabled = true;
    try {
      await compare();
    } catch (err) {
      if (err?.name !== 'AbortError') throw err;
    }
  }));
}

