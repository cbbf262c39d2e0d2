// Explaining: the current image's forward pass (top-5), then the chosen method's map, growing
// batch by batch. Writes the store; the views draw from it.

import { get, set, newRun, isCurrent } from './store.js';
import { session, serial, isAbort, clearError, showNotice, hasNotice } from './core.js';

// On the CPU: small batches, so the pool's workers share the work finely (www/workers.js); the
// core makes the first batch a single masked input, so the first heatmap comes early.
const CPU_BATCH = 4;
// Partial heatmaps are drawn at most this often (the first at once): drawing is the page
// thread's only work during a run, and the CPU pool reports a batch every few tens of ms.
const PARTIAL_MS = 250;

/// Whether the registry's method `name` takes the option `option` (e.g. 'top_k').
export function methodHas(name, option) {
  return Boolean(get().methods.find((m) => m.name === name)?.options.some((o) => o.name === option));
}

/// The options sent for `method`: only those it has.
function methodOptions(method) {
  const { options, backend } = get();
  const out = {};
  if (options.topK !== null && methodHas(method, 'top_k')) out.top_k = options.topK;
  if (backend.name === 'cpu' && methodHas(method, 'batch_size')) out.batch_size = CPU_BATCH;
  return out;
}

/// The request the core gets for explaining `classIndex` with `method` (default: the chosen one).
export function explainRequest(classIndex, method = get().options.method) {
  return { class: classIndex, method, options: methodOptions(method) };
}

/// The unmasked forward pass of the current image (top-5), then its explanation (`method`: instead
/// of the chosen one, e.g. Grad-CAM for the live camera; `live`: a camera frame, which only the
/// lead worker explains, so the CPU pool's helpers are not sent it).
export async function analyseImage({ method, live = false } = {}) {
  const { model, image } = get();
  if (!model || !image) return;
  const run = newRun();
  const { canvas, width, height } = image;
  const rgba = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  set({ page: 'explaining' });
  const t0 = performance.now();
  const r = await serial(() => (isCurrent(run) ? session.setImage(new Uint8Array(rgba.buffer), width, height, { share: !live }) : null));
  if (!r || !isCurrent(run)) return;
  set({ top5: r.top5, timings: { ...get().timings, forwardMs: performance.now() - t0 } });
  await explainClass(get().classIndex, { method });
}

/// Explains `classIndex` (null: the top class) of the current image with the chosen method (or
/// `method`). The finished result keeps its `request`, which the teaching views reuse.
export async function explainClass(classIndex, { method } = {}) {
  const { image, model } = get();
  if (!image || !model) return;
  const run = newRun();
  clearError();
  set({ classIndex, page: 'explaining', progress: { done: 0, total: 1 } });
  const size = model.info.input_size;
  const request = explainRequest(classIndex, method);
  const t0 = performance.now();
  let firstMs = null;
  let drawn = -Infinity;
  const onProgress = (p) => {
    if (!isCurrent(run)) return false; // superseded: cancel at this batch
    const now = performance.now();
    firstMs ??= now - t0;
    const patch = { progress: { done: p.done, total: p.total } };
    if (p.map && now - drawn >= PARTIAL_MS) {
      patch.result = { partial: true, map: p.map, size };
      drawn = now;
    }
    set(patch);
    return true;
  };
  let result;
  try {
    result = await serial(() => (isCurrent(run) ? session.explain(request, onProgress) : null));
  } catch (err) {
    if (isAbort(err)) return;
    throw err;
  }
  if (!result || !isCurrent(run)) return; // a stale result never overwrites a newer one
  if (get().backend.name === 'webgpu' && (await session.call('validationErrors', [])) > 0 && !hasNotice()) {
    showNotice('This GPU rejected some compute kernels (see the console). If a heatmap looks wrong, compare with the CPU: add ?backend=cpu to the address.');
  }
  const explain = { firstHeatmapMs: firstMs, totalMs: performance.now() - t0, stats: result.stats };
  result.request = { ...request, class: result.explained.class };
  result.madeWith = model; // the store's model: the teaching views' work for it ends with it
  set({ result, classIndex: result.explained.class, progress: null, timings: { ...get().timings, explain }, page: 'done' });
}
