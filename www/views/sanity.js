// Sanity check (the paper's Figure 9; Adebayo et al. 2018): a stepper that re-initialises the
// network's layers from the top, one layer (VGG) or block (EfficientNet) per stage, and shows the
// map after each stage beside the original, with their Spearman rank correlation. The weights are
// those of `scorecam sanity --seed 0`. Each stage costs one explanation with the current method.

import { $, make } from '../dom.js';
import { get, set } from '../store.js';
import { wasm, fail } from '../core.js';
import { finished, isScoreCam, sanityStage } from '../teachdata.js';
import { drawOverlay, fitToPhoto, lines } from '../plot.js';
import { showBody } from './panel.js';

let shown = null; // {result, method, groups, rho: Map(stage -> Spearman)}
let token = 0;

const setStage = (stage) => set({ teach: { ...get().teach, stage } });

/// The stepper's method: the one chosen in the view, else the explanation's own, except Score-CAM
/// on the CPU backend (it scores every channel again at each stage: minutes there), which starts
/// with Grad-CAM.
export function stepperMethod(result) {
  const chosen = get().teach.sanityMethod;
  if (chosen) return chosen;
  return get().backend?.name === 'cpu' && isScoreCam(result) ? 'gradcam' : result.method;
}

function drawPlot() {
  const n = shown.groups.length + 1;
  const values = Array.from({ length: n }, (_, s) => shown.rho.get(s) ?? NaN).map((v) => Math.max(0, v));
  lines($('sanity-plot'), [{ values, colour: '#2455c3', dots: true, label: 'Spearman with the original map (stages computed so far)' }], { xLabel: 'stage: layers randomised, from the top', yLabel: 'Spearman', marker: get().teach.stage / Math.max(1, n - 1), x1Text: String(n - 1), legendAt: 'bottom' });
}

export async function render() {
  const result = finished();
  if (!showBody('sanity', Boolean(result), 'Explain an image first.')) {
    shown = null;
    return;
  }
  const mine = ++token;
  const { image, view, teach } = get();
  const method = stepperMethod(result);
  const select = $('sanity-method');
  if (select.options.length !== get().methods.length) select.replaceChildren(...get().methods.map((m) => make('option', { value: m.name, textContent: m.display_name })));
  select.value = method;
  $('sanity-cost').textContent = get().backend?.name === 'cpu' && method.startsWith('scorecam') ? 'On the CPU each stage is a full Score-CAM again: about as long as the first explanation, per stage.' : '';
  if (shown?.result !== result || shown.method !== method) shown = { result, method, groups: null, rho: new Map([[0, 1]]) };
  const stage = teach.stage;
  $('sanity-status').textContent = `Explaining ${stage ? 'with the randomised network' : 'with the trained network'}…`;
  $('sanity-prev').disabled = stage === 0;
  let r;
  try {
    const original = await sanityStage(result, method, 0);
    if (mine !== token) return;
    shown.original = original;
    r = await sanityStage(result, method, stage, (p) => {
      if (mine === token) $('sanity-status').textContent = `Stage ${stage}: ${p.done} of ${p.total}…`;
    });
  } catch (err) {
    if (mine === token) $('sanity-status').textContent = '';
    if (err?.name !== 'AbortError') {
      if (stage && mine === token) setStage(0);
      fail(err);
    }
    return;
  }
  if (mine !== token || finished() !== result) return;
  shown.groups = r.groups;
  const rho = stage === 0 ? 1 : wasm.spearman(shown.original.map, r.map);
  shown.rho.set(stage, rho);
  const original = $('sanity-original');
  fitToPhoto(original, image, 240);
  drawOverlay(original, image.canvas, shown.original.map, r.size, view.cmap, view.opacity);
  const randomised = $('sanity-randomised');
  fitToPhoto(randomised, image, 240);
  drawOverlay(randomised, image.canvas, r.map, r.size, view.cmap, view.opacity);
  $('sanity-stage').textContent = stage === 0 ? 'Stage 0: the trained network' : `Stage ${stage} of ${r.groups.length}: randomised down to ${r.groups[stage - 1]}`;
  const verdict = rho >= 0.9 ? 'the map hardly changed: so far it does not depend on the randomised layers' : rho >= 0.5 ? 'the map changed in part' : 'the map changed with the weights, as an explanation of the network should';
  $('sanity-rho').textContent = `Spearman rank correlation with the original map: ${rho.toFixed(3)}${stage ? ` — ${verdict}` : ''}.`;
  $('sanity-status').textContent = '';
  $('sanity-next').disabled = stage >= r.groups.length;
  drawPlot();
}

export function init() {
  $('sanity-method').addEventListener('change', (e) => set({ teach: { ...get().teach, sanityMethod: e.target.value } }));
  $('sanity-next').addEventListener('click', () => setStage(get().teach.stage + 1));
  $('sanity-prev').addEventListener('click', () => setStage(Math.max(0, get().teach.stage - 1)));
}
