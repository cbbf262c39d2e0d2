// Compare: every CAM method on the current photo and class, in a grid. Each cell is one call of
// the core's compareMethod (src/web.rs: `Explainer::compare`, what `scorecam compare` runs): the
// method's map, its time and passes, then its map checked by the metrics code `scorecam eval`
// uses (deletion and insertion AUC, Average Drop with the image times the map). The methods run
// on every worker of the pool, each worker taking the next method, and a cell is filled as its
// method finishes. A new image, class or model cancels the grid (as does Cancel); the costly
// methods (the registry's `costly`: thousands of passes) show their expected time and run on
// request. Each cell carries its method's teaching text.

import { $, make } from '../dom.js';
import { get, set, subscribe } from '../store.js';
import { session, describe, isAbort, guard } from '../core.js';
import { finished } from '../teachdata.js';
import { drawOverlay, fitToPhoto } from '../plot.js';
import { showBody } from './panel.js';

/// The sort keys (the CLI's `--sort`): which column, and whether lower is better.
export const SORTS = {
  method: { label: 'method (the registry’s order)', get: null },
  deletion: { label: 'deletion AUC (lowest first)', get: (r) => r.deletion_auc },
  insertion: { label: 'insertion AUC (highest first)', get: (r) => -r.insertion_auc },
  drop: { label: 'Average Drop (lowest first)', get: (r) => r.average_drop },
  seconds: { label: 'time (shortest first)', get: (r) => r.seconds },
  forwards: { label: 'forward passes (fewest first)', get: (r) => r.forwards },
};

/// The curves' resolution: pixels deleted or inserted per point (the CLI's `--curve-step`).
/// 'full' is `scorecam eval`'s (RISE's 224, 225 points on 224 x 224); 'quick' every fourth of its
/// points, a quarter of the metrics' passes (the grid's default: most of its time is metrics).
export const CURVES = {
  quick: { label: '57 points (quick)', step: 896 },
  full: { label: '225 points (as scorecam eval)', step: 224 },
};

const curveStep = () => (CURVES[get().teach.compareCurves] ?? CURVES.quick).step;

const CELL_SIDE = 168;

// The grid: {result, image, model, class (what it explains), cells: Map(name -> cell), order:
// [name], queue: [name], stop (why it was cancelled), running, t0, waiters, curves: Map(curve key
// -> Promise of its points, or null where its worker failed)}. It belongs to an
// image, model and class: another method in the Method list keeps it.
let grid = null;

const setTeach = (patch) => set({ teach: { ...get().teach, ...patch } });

/// The methods the grid shows: every CAM method the page offers, in the registry's order.
function camMethods() {
  return get().methods.filter((m) => m.kind === 'cam');
}

function abortError(why) {
  return Object.assign(new Error(why), { name: 'AbortError' });
}

// ---------------------------------------------------------------- running

/// The request of one cell: the explained class, the method's defaults (its own target).
function requestOf(g, name) {
  return { class: g.result.explained.class, method: name, options: {} };
}

/// Starts a grid for `result`: the methods that are not costly are queued, the costly ones wait
/// for their Run button. `previous`: a cancelled grid of the same image, model and class, whose
/// finished cells are kept and whose requested costly methods are queued again.
function startGrid(result, previous = null) {
  stopGrid('a new explanation');
  const { image, model } = get();
  const g = { result, image, model, class: result.explained.class, cells: new Map(), order: [], queue: [], stop: null, running: null, t0: performance.now(), waiters: [], curveStep: curveStep(), curves: previous?.curves ?? new Map() };
  for (const spec of camMethods()) {
    const old = previous?.cells.get(spec.name);
    const cell = { spec, state: spec.costly ? 'costly' : 'queued', record: null, error: null, progress: null, passes: old?.passes ?? null, el: null };
    if (old?.state === 'done') Object.assign(cell, { state: 'done', record: old.record });
    else if (old && spec.costly && old.state !== 'costly') cell.state = 'queued';
    g.order.push(spec.name);
    g.cells.set(spec.name, cell);
    if (cell.state === 'queued') g.queue.push(spec.name);
  }
  grid = g;
  buildCells(g);
  estimateCostly(g).catch(() => {});
  pump(g);
  return g;
}

/// Cancels the running grid (its cells say why); a new one starts when the view renders.
function stopGrid(why) {
  const g = grid;
  if (!g || g.stop) return;
  g.stop = why;
  for (const name of g.queue) {
    g.cells.get(name).state = 'cancelled';
    renderCell(g, name);
  }
  g.queue = [];
  if (!g.running) settle(g);
  renderStatus();
}

/// Runs the queue on every worker (www/workers.js: the lead, and the CPU pool's helpers holding
/// the current model and image); returns once the queue is empty or the grid stopped.
function pump(g) {
  if (g.running || g.stop || !g.queue.length) return;
  g.running = session.onEveryWorker((worker, onFail) => work(g, worker, onFail)).catch((err) => {
    console.error(err);
  }).finally(() => {
    g.running = null;
    if (g.queue.length && !g.stop) pump(g);
    else settle(g);
  });
  renderStatus();
}

async function work(g, worker, onFail) {
  while (g.queue.length && !g.stop) {
    const name = g.queue.shift();
    const cell = g.cells.get(name);
    cell.state = 'running';
    cell.progress = null;
    renderCell(g, name);
    renderStatus();
    const onProgress = (p) => {
      if (g.stop) return false;
      cell.progress = p;
      renderProgress(cell);
      return true;
    };
    let mine = []; // [key, resolve] of the curves this worker scores for the others
    try {
      const { keys } = await worker.call('compareMethod', [requestOf(g, name), g.curveStep], { onProgress });
      // The curves depend on the map's pixel order alone: those another worker has scored, or is
      // scoring, for a map ordered alike (on Lite0, Grad-CAM's for ShapleyCAM with the logit,
      // Grad-CAM element-wise's for LayerCAM) are awaited and handed over instead of scored again.
      const others = keys.filter((key) => g.curves.has(key));
      mine = keys.filter((key) => !g.curves.has(key)).map((key) => {
        let resolve;
        g.curves.set(key, new Promise((r) => (resolve = r)));
        return [key, resolve];
      });
      const known = [];
      for (const key of others) {
        const points = await g.curves.get(key);
        if (points) known.push({ key, points });
      }
      if (g.stop) throw abortError(g.stop);
      const record = await worker.call('compareMetrics', [known], { onProgress });
      for (const [key, resolve] of mine) resolve(record.curves.find((c) => c.key === key)?.points ?? null);
      mine = [];
      cell.record = record;
      cell.state = 'done';
    } catch (err) {
      // curves this worker was to score: whoever waits for them scores them itself
      for (const [key, resolve] of mine) {
        g.curves.delete(key);
        resolve(null);
      }
      if (isAbort(err) || g.stop) {
        cell.state = 'cancelled';
      } else if (err instanceof WebAssembly.RuntimeError || worker.dead) {
        // a helper that crashed is replaced; its method goes back in the queue for the others
        if (onFail(err)) {
          cell.state = 'queued';
          g.queue.unshift(name);
          renderCell(g, name);
          return;
        }
        cell.state = 'failed';
        cell.error = describe(err);
      } else {
        cell.state = 'failed'; // e.g. CAM on a head that is not pooling + one linear layer
        cell.error = describe(err);
      }
    }
    if (g !== grid) return;
    renderCell(g, name);
    renderStatus();
    sortCells(g);
    estimateCostly(g).catch(() => {});
  }
}

/// Queues a costly method (its Run button).
function runOne(name) {
  const g = grid;
  if (!g || g.stop) return;
  const cell = g.cells.get(name);
  if (!cell || !['costly', 'cancelled', 'failed'].includes(cell.state)) return;
  cell.state = 'queued';
  g.queue.push(name);
  renderCell(g, name);
  pump(g);
}

/// Runs the grid again (after a Cancel): every method not done, the costly ones that had been
/// asked for included.
function restart() {
  const result = finished();
  if (!result) return;
  const { image, model } = get();
  const old = grid;
  const same = old && old.image === image && old.model === model && old.class === result.explained.class && old.curveStep === curveStep();
  startGrid(result, same ? old : null);
}

function settle(g) {
  const waiters = g.waiters.splice(0);
  for (const w of waiters) w();
  renderStatus();
}

/// Seconds per forward pass on this device, from the cells done so far (their metrics: batches
/// of the model's forward, as a costly method's passes are); null before any.
function secondsPerForward(g) {
  // (cells whose curves another worker scored ran one pass alone: not a batch's rate)
  const rates = [...g.cells.values()].filter((c) => c.record?.metric_forwards > 1).map((c) => c.record.metric_seconds / c.record.metric_forwards).sort((a, b) => a - b);
  return rates.length ? rates[Math.floor(rates.length / 2)] : null;
}

/// Each costly method's passes (the core's count for this model) and, once a cell is done, its
/// expected time.
async function estimateCostly(g) {
  for (const [name, cell] of g.cells) {
    if (!cell.spec.costly) continue;
    cell.passes ??= await session.call('passes', [requestOf(g, name)]);
    if (g !== grid) return;
    renderCell(g, name);
  }
}

function expectedSeconds(g, cell) {
  const rate = secondsPerForward(g);
  if (!rate || !cell.passes) return null;
  const { forwards, head_forwards: head, backwards } = cell.passes;
  const metrics = Math.max(0, ...[...g.cells.values()].map((c) => c.record?.metric_seconds ?? 0));
  // a head's pass is a small part of the whole network's; a backward about two forwards
  return (forwards + 0.1 * head + 2 * backwards) * rate + metrics;
}

// ---------------------------------------------------------------- drawing

const fmt = {
  seconds: (v) => (v < 10 ? v.toFixed(2) : v.toFixed(1)),
  auc: (v) => v.toFixed(4),
  drop: (v) => `${v.toFixed(1)}%`,
};

function buildCells(g) {
  $('compare-grid').replaceChildren(...g.order.map((name) => {
    const cell = g.cells.get(name);
    const { spec } = cell;
    const el = make('figure', { className: 'compare-cell' });
    el.dataset.method = name;
    const canvas = make('canvas', { width: CELL_SIDE, height: CELL_SIDE });
    canvas.setAttribute('aria-label', `${spec.display_name}'s map over the photo`);
    const title = make('figcaption');
    title.append(make('strong', { textContent: spec.display_name }));
    const numbers = make('dl', { className: 'numbers' });
    const status = make('p', { className: 'hint cell-status' });
    const run = make('button', { type: 'button', textContent: 'Run', hidden: true });
    run.addEventListener('click', () => runOne(name));
    const about = make('details', { className: 'teaching' });
    about.append(make('summary', { textContent: 'How it works' }));
    const t = spec.teaching;
    for (const [label, text] of [['Formula', t.formula], ['Paper', t.paper], ['Passes', t.passes], ['Versus Score-CAM', t.versus_scorecam]]) {
      const p = make('p');
      p.append(make('b', { textContent: `${label}: ` }), text);
      about.append(p);
    }
    el.append(canvas, title, numbers, status, run, about);
    cell.el = { root: el, canvas, numbers, status, run };
    drawCell(g, cell);
    return el;
  }));
  sortCells(g);
}

function renderCell(g, name) {
  const cell = g.cells.get(name);
  if (cell.el) drawCell(g, cell);
}

function renderProgress(cell) {
  if (cell.el && cell.progress) cell.el.status.textContent = `running: ${cell.progress.done} of ${cell.progress.total} passes`;
}

function drawCell(g, cell) {
  const { root, canvas, numbers, status, run } = cell.el;
  const { image, view } = get();
  root.dataset.state = cell.state;
  const r = cell.record;
  if (image && canvas.dataset.drawn !== String(Boolean(r))) {
    fitToPhoto(canvas, image, CELL_SIDE);
    drawOverlay(canvas, image.canvas, r?.map ?? null, g.result.size, view.cmap, view.opacity);
    canvas.dataset.drawn = String(Boolean(r));
  }
  const rows = r
    ? [
        ['time', `${fmt.seconds(r.seconds)} s`, `the method's time; its metrics took ${fmt.seconds(r.metric_seconds)} s more (${r.metric_forwards} passes)`],
        ['passes', `${r.forwards}${r.backwards ? ` + ${r.backwards} backward` : ''}${r.head_forwards ? ` + ${r.head_forwards} head` : ''}`, 'forward passes of the whole network (the image’s own included), backward passes, passes of the head alone'],
        ['deletion AUC', fmt.auc(r.deletion_auc), 'lower is better'],
        ['insertion AUC', fmt.auc(r.insertion_auc), 'higher is better'],
        ['Average Drop', fmt.drop(r.average_drop), 'lower is better (the image times the map)'],
      ]
    : [];
  numbers.replaceChildren(...rows.flatMap(([k, v, title]) => [make('dt', { textContent: k, title }), make('dd', { textContent: v, title })]));
  if (r) for (const [key, value] of Object.entries({ seconds: r.seconds, forwards: r.forwards, deletion: r.deletion_auc, insertion: r.insertion_auc, drop: r.average_drop })) root.dataset[key] = String(value);
  run.hidden = !(cell.state === 'costly' || (cell.spec.costly && ['cancelled', 'failed'].includes(cell.state)));
  const expected = expectedSeconds(g, cell);
  const text = {
    queued: 'waiting for a worker',
    running: 'running…',
    done: '',
    failed: cell.error ?? 'failed',
    cancelled: 'cancelled',
    costly: cell.passes
      ? `Costly: ${cell.passes.forwards} forward passes${expected ? `, about ${Math.ceil(expected)} s here` : ''}. Run it on request.`
      : 'Costly: thousands of passes. Run it on request.',
  }[cell.state];
  if (cell.state !== 'running' || !cell.progress) status.textContent = text;
  status.classList.toggle('error', cell.state === 'failed');
}

/// Orders the cells by the chosen column: methods with numbers first, the others in the
/// registry's order after them.
function sortCells(g) {
  const key = SORTS[get().teach.compareSort] ?? SORTS.method;
  const index = new Map(g.order.map((n, i) => [n, i]));
  const names = [...g.order].sort((a, b) => {
    if (!key.get) return index.get(a) - index.get(b);
    const ra = g.cells.get(a).record;
    const rb = g.cells.get(b).record;
    if (ra && rb) return key.get(ra) - key.get(rb) || index.get(a) - index.get(b);
    if (ra || rb) return ra ? -1 : 1;
    return index.get(a) - index.get(b);
  });
  const container = $('compare-grid');
  const current = [...container.children].map((el) => el.dataset.method);
  if (current.join() !== names.join()) container.append(...names.map((n) => g.cells.get(n).el.root));
  $('compare-sort').value = get().teach.compareSort;
  $('compare-resolution').value = get().teach.compareCurves ?? 'quick';
}

function renderStatus() {
  const g = grid;
  const cancel = $('compare-cancel');
  const again = $('compare-again');
  if (!g) {
    cancel.disabled = true;
    again.hidden = true;
    $('compare-status').textContent = '';
    return;
  }
  const cells = [...g.cells.values()];
  const count = (s) => cells.filter((c) => c.state === s).length;
  const busy = Boolean(g.running) && !g.stop;
  const seconds = ((performance.now() - g.t0) / 1000).toFixed(1);
  let text = `${count('done')} of ${cells.filter((c) => c.state !== 'costly').length} methods done`;
  if (count('failed')) text += `, ${count('failed')} could not run`;
  if (g.stop) text += `; cancelled (${g.stop})`;
  else text += busy ? ` (${seconds} s so far)…` : ` in ${seconds} s.`;
  const costly = count('costly');
  if (costly) text += ` ${costly} costly methods run on request.`;
  $('compare-status').textContent = text;
  $('compare-body').dataset.state = g.stop ? 'cancelled' : busy ? 'running' : 'done';
  cancel.disabled = !busy;
  again.hidden = !g.stop;
}

// ---------------------------------------------------------------- the view

export async function render(changed) {
  const result = finished();
  if (!showBody('compare', Boolean(result), 'Explain an image first.')) return;
  const { image, model } = get();
  if (!(grid && grid.image === image && grid.model === model && grid.class === result.explained.class && grid.curveStep === curveStep())) startGrid(result);
  else if (changed?.compareSort) sortCells(grid);
  else if (changed?.view) {
    for (const cell of grid.cells.values()) {
      if (!cell.el) continue;
      cell.el.canvas.dataset.drawn = '';
      drawCell(grid, cell);
    }
  }
}

/// Opens the compare view and resolves once its grid has run: one record per method that ran
/// (`{method, display_name, map (Float32Array), size, seconds, forwards, head_forwards,
/// backwards, deletion_auc, insertion_auc, average_drop, target, …}`), in the grid's sort order.
/// `methods`: costly methods to run too. Rejects with an AbortError if the grid is cancelled.
export async function compareAll({ methods = [] } = {}) {
  const result = finished();
  if (!result) throw new Error('Nothing is explained yet.');
  // (No await before the methods are queued: a new class asked for right after this call
  // cancels them.)
  if (get().teach.tab !== 'compare') setTeach({ tab: 'compare' });
  else render(null);
  if (grid?.stop) restart(); // cancelled before: run what was left
  const g = grid;
  if (!g || g.class !== result.explained.class) throw abortError('the compare view did not start');
  for (const name of methods) {
    if (!g.cells.has(name)) throw new Error(`No CAM method of this page is called “${name}”.`);
    runOne(name);
  }
  await new Promise((resolve) => {
    if (!g.running) resolve();
    else g.waiters.push(resolve);
  });
  if (g.stop) throw abortError(`the comparison was cancelled (${g.stop})`);
  return records(g);
}

/// The grid's records so far, in its order on the page.
export function records(g = grid) {
  if (!g) return [];
  return [...$('compare-grid').children].map((el) => g.cells.get(el.dataset.method)).filter((c) => c?.record).map((c) => ({ ...c.record, size: g.result.size }));
}

/// Cancels the running grid, as the Cancel button does.
export function cancel() {
  stopGrid('cancelled');
}

export function init() {
  $('compare-sort').replaceChildren(...Object.entries(SORTS).map(([value, s]) => make('option', { value, textContent: s.label })));
  $('compare-sort').addEventListener('change', (e) => setTeach({ compareSort: e.target.value }));
  $('compare-resolution').replaceChildren(...Object.entries(CURVES).map(([value, c]) => make('option', { value, textContent: c.label })));
  // Other curves are other numbers: the view starts a new grid (render).
  $('compare-resolution').addEventListener('change', (e) => setTeach({ compareCurves: e.target.value }));
  $('compare-cancel').addEventListener('click', () => stopGrid('by you'));
  $('compare-again').addEventListener('click', guard(() => restart()));
  // A new image, class or model cancels the grid as its explanation starts (the view starts a
  // new grid once that is done).
  subscribe((s, changed) => {
    if (!grid || grid.stop) return;
    if (('image' in changed && s.image !== grid.image) || ('model' in changed && s.model !== grid.model) || ('classIndex' in changed && s.classIndex !== grid.class)) stopGrid('a new image, class or model');
  });
}
