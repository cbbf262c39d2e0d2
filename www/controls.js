// The controls: the top-5 list, the class search, the Method options, the view controls, and the
// run's progress and caption. They show the store and change it; explaining is explain.js's.

import { $, make } from './dom.js';
import { get, set, subscribe } from './store.js';
import { guard } from './core.js';
import { explainClass } from './explain.js';

/// Options named by the core's registry: value = name, text = display_name.
function fillSelect(select, items) {
  select.replaceChildren(...items.map((m) => make('option', { value: m.name, textContent: m.display_name, title: m.summary ?? '' })));
}

function renderTop5() {
  const { top5, result } = get();
  const explained = result && !result.partial ? result.explained.class : null;
  $('top5').replaceChildren(...top5.map((t) => {
    const b = make('button', { type: 'button', textContent: `${t.name} — ${(t.probability * 100).toFixed(1)}%` });
    b.dataset.class = String(t.class);
    if (t.class === explained) b.setAttribute('aria-current', 'true');
    b.addEventListener('click', guard(() => explainClass(t.class)));
    const li = make('li');
    li.append(b);
    return li;
  }));
}

function fillClassNames(names) {
  $('class-names').replaceChildren(...names.map((n, i) => make('option', { value: `${i}: ${n}` })));
}

function syncView() {
  const { view } = get();
  $('cmap-select').value = view.cmap;
  $('view-select').value = view.layout;
  $('opacity').value = String(view.opacity);
}

/// The chosen method's teaching text: its formula, the paper, its passes, how it differs from
/// Score-CAM (the registry's `teaching`).
function showTeaching(spec) {
  const box = $('method-teaching');
  const t = spec?.teaching;
  box.replaceChildren(...(t ? [['Formula', t.formula], ['Paper', t.paper], ['Passes', t.passes], ['Versus Score-CAM', t.versus_scorecam]] : []).filter(([, text]) => text).map(([label, text]) => {
    const p = make('p');
    p.append(make('b', { textContent: `${label}: ` }), text);
    return p;
  }));
}

function syncOptions() {
  const { options, methods } = get();
  $('method-select').value = options.method;
  showTeaching(methods.find((m) => m.name === options.method));
  // Faster-Score-CAM's top-k, for the methods that have it.
  const topK = methods.find((m) => m.name === options.method)?.options.find((o) => o.name === 'top_k');
  $('topk-label').hidden = !topK;
  const input = $('topk');
  if (topK) {
    input.min = String(topK.min ?? 1);
    input.max = topK.max ?? '';
    input.title = topK.help;
  }
  input.value = options.topK ?? '';
}

function renderRun() {
  const { progress, result, image, model } = get();
  $('run-status').hidden = !progress;
  if (progress) {
    $('run-progress').max = progress.total;
    $('run-progress').value = progress.done;
    $('run-status-text').textContent = progress.done ? `Scored ${progress.done} of ${progress.total} activation maps` : 'Scoring the activation maps…';
  }
  const done = result && !result.partial ? result.explained : null;
  $('explained').textContent = done ? `Explaining “${done.name}” (class ${done.class}, p = ${(done.probability * 100).toFixed(1)}%)` : '';
  $('copy-link').disabled = !(image && model);
  $('download').disabled = !done;
}

const setView = (patch) => set({ view: { ...get().view, ...patch } });

/// A new method or top-k explains the current class again.
function setOptions(patch) {
  set({ options: { ...get().options, ...patch } });
  return explainClass(get().classIndex);
}

/// Fills the Method and Colormap lists from the core's registry (call after the start) and wires
/// the controls.
export function init() {
  const { methods, colormaps } = get();
  fillSelect($('method-select'), methods);
  fillSelect($('cmap-select'), colormaps);
  syncView();
  syncOptions();
  renderRun();
  subscribe((s, changed) => {
    // Not on partial maps: a list rebuilt under the pointer would swallow the click.
    if ('top5' in changed || ('result' in changed && !s.result?.partial)) renderTop5();
    if ('view' in changed) syncView();
    if ('options' in changed) syncOptions();
    if ('model' in changed) fillClassNames(s.model?.info.class_names ?? []);
    if (['progress', 'result', 'image', 'model'].some((k) => k in changed)) renderRun();
  });
  $('opacity').addEventListener('input', (e) => setView({ opacity: Number(e.target.value) }));
  $('cmap-select').addEventListener('change', (e) => setView({ cmap: e.target.value }));
  $('view-select').addEventListener('change', (e) => setView({ layout: e.target.value }));
  $('method-select').addEventListener('change', guard((e) => setOptions({ method: e.target.value })));
  $('topk').addEventListener('change', guard((e) => {
    const k = Number.parseInt(e.target.value, 10);
    return setOptions({ topK: Number.isFinite(k) && k > 0 ? k : null });
  }));
  $('class-search').addEventListener('change', guard((e) => {
    const m = /^(\d+):/.exec(e.target.value);
    const names = get().model?.info.class_names ?? [];
    const index = m ? Number(m[1]) : names.findIndex((n) => n.toLowerCase() === e.target.value.trim().toLowerCase());
    if (!(index >= 0 && index < names.length)) throw new Error(`No class is called “${e.target.value}”.`);
    e.target.value = '';
    return explainClass(index);
  }));
}
