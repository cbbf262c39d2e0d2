// Why not gradients (the paper's "false confidence"): Grad-CAM's weight of each channel (its mean
// gradient) beside Score-CAM's score for the same channel, as a scatter plot. The channels the
// gradient ranks among its top ten while their masked input barely raises the class score are
// marked and listed. Below: Score-CAM, Grad-CAM and Grad-CAM++ for the same image and class. Costs
// one forward and one backward pass per gradient method.

import { $, make } from '../dom.js';
import { get, set } from '../store.js';
import { wasm, fail } from '../core.js';
import { comparison, finished, isScoreCam } from '../teachdata.js';
import { drawOverlay, fitToPhoto, scatter } from '../plot.js';
import { showBody } from './panel.js';

const TOP = 10;

let pick = null; // the scatter's hit test
let byGradient = []; // the scored channels by Grad-CAM weight, largest first (the arrow keys' order)
let token = 0;

/// Channels among Grad-CAM's top TOP whose Score-CAM score is in the lower half of the scored
/// channels: the gradient's "false confidence".
export function falseConfidence(scoreCam, gradCam) {
  const scored = scoreCam.channels.filter((c) => c.score !== null);
  const byScore = [...scored].sort((a, b) => b.score - a.score);
  const scoreRank = new Map(byScore.map((c, i) => [c.channel, i + 1]));
  const byGrad = scored.map((c) => c.channel).sort((a, b) => gradCam.channels[b].weight - gradCam.channels[a].weight || a - b);
  return byGrad.slice(0, TOP).map((k, i) => ({ channel: k, gradRank: i + 1, scoreRank: scoreRank.get(k), score: scoreCam.channels[k].score, gradWeight: gradCam.channels[k].weight }))
    .filter((c) => c.scoreRank > scored.length / 2);
}

export async function render() {
  const result = finished();
  const ok = Boolean(isScoreCam(result) && result.channels?.length);
  if (!showBody('gradients', ok, result ? 'This view compares Score-CAM with the gradient methods: choose Score-CAM under Method options.' : 'Explain an image first.')) return;
  const mine = ++token;
  $('gradients-status').textContent = 'Computing Grad-CAM and Grad-CAM++ for the same class…';
  let cmp;
  try {
    cmp = await comparison(result);
  } catch (err) {
    if (err?.name !== 'AbortError') fail(err);
    return;
  }
  if (mine !== token || finished() !== result) return;
  $('gradients-status').textContent = '';
  const grad = cmp.gradcam;
  const fc = falseConfidence(result, grad);
  const marked = new Set(fc.map((c) => c.channel));
  const scored = result.channels.filter((c) => c.score !== null);
  const selected = get().teach.channel;
  const points = scored.map((c) => ({ x: grad.channels[c.channel].weight, y: c.score, channel: c.channel, highlight: marked.has(c.channel), selected: c.channel === selected }));
  byGradient = scored.map((c) => c.channel).sort((a, b) => grad.channels[b].weight - grad.channels[a].weight || a - b);
  const rankOf = (order, k) => order.indexOf(k) + 1;
  const byScore = scored.map((c) => c.channel).sort((a, b) => result.channels[b].score - result.channels[a].score || a - b);
  $('gradients-selected').textContent = result.channels[selected]?.score != null
    ? `Channel ${selected}: Grad-CAM weight ${grad.channels[selected].weight.toPrecision(3)} (#${rankOf(byGradient, selected)}), Score-CAM score ${result.channels[selected].score.toPrecision(3)} (#${rankOf(byScore, selected)} of ${scored.length}).`
    : 'Choose a channel: click a dot, or focus the plot and use the arrow keys.';
  pick = scatter($('gradients-scatter'), points, { xLabel: 'Grad-CAM weight (mean gradient)', yLabel: result.method === 'scorecam' ? 'Score-CAM score (p)' : 'Score-CAM score (logit)' });
  const rho = wasm.spearman(Float32Array.from(scored, (c) => grad.channels[c.channel].weight), Float32Array.from(scored, (c) => c.score));
  $('gradients-summary').textContent = `${scored.length} channels. Rank correlation between the two weightings: ${rho.toFixed(2)}. ${fc.length} of Grad-CAM's top ${TOP} channels score in Score-CAM's lower half (red).`;
  $('gradients-list').replaceChildren(...fc.map((c) => {
    const b = make('button', { type: 'button', className: 'link-button', textContent: `channel ${c.channel}` });
    b.addEventListener('click', () => set({ teach: { ...get().teach, tab: 'steps', channel: c.channel } }));
    const li = make('li');
    li.append(b, ` — Grad-CAM's #${c.gradRank}, but its masked input gives ${c.score.toPrecision(3)} (#${c.scoreRank} of ${scored.length} by score)`);
    return li;
  }));
  const { image, view } = get();
  for (const [id, r] of [['cmp-scorecam', result], ['cmp-gradcam', cmp.gradcam], ['cmp-gradcampp', cmp.gradcampp]]) {
    const canvas = $(id);
    fitToPhoto(canvas, image, 220);
    drawOverlay(canvas, image.canvas, r.map, r.size, view.cmap, view.opacity);
  }
}

export function init() {
  const canvas = $('gradients-scatter');
  canvas.addEventListener('click', (e) => {
    if (!pick) return;
    const r = canvas.getBoundingClientRect();
    const p = pick(((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height);
    if (p) set({ teach: { ...get().teach, channel: p.channel } });
  });
  // The keyboard goes through the channels by Grad-CAM weight, largest first.
  canvas.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -Infinity, End: Infinity }[e.key];
    if (step === undefined || !byGradient.length) return;
    e.preventDefault();
    const i = byGradient.indexOf(get().teach.channel);
    const next = Number.isFinite(step) ? Math.max(0, Math.min(byGradient.length - 1, (i < 0 ? -1 : i) + step)) : step < 0 ? 0 : byGradient.length - 1;
    set({ teach: { ...get().teach, channel: byGradient[next] } });
  });
}
