// The numbers the teaching views show, computed by the core once per finished explanation and
// kept with it: the target layer's activations, a channel's mask, Grad-CAM and Grad-CAM++ for the
// same class, the deletion and insertion curves, Average Drop / Increase, and the randomised
// stages of the sanity check. A new image, class or method makes a new result; work still running
// for an older one stops at its next step and is dropped (it rejects with an AbortError).

import { get } from './store.js';
import { wasm, session } from './core.js';
import { explainRequest } from './explain.js';

// Curve points per call: small, so the pool's workers share a curve and it is drawn as it grows.
const CURVE_CHUNK = 8;
export const COMPARED = ['gradcam', 'gradcampp'];

const caches = new WeakMap(); // result -> what was computed for it

function cacheOf(result) {
  let c = caches.get(result);
  if (!c) caches.set(result, (c = { stages: new Map(), curves: new Map(), listeners: new Set() }));
  return c;
}

function stale() {
  return Object.assign(new Error('a newer explanation replaced this one'), { name: 'AbortError' });
}

/// The finished explanation on the page, or null.
export function finished() {
  const r = get().result;
  return r && !r.partial ? r : null;
}

/// Whether `result` is still the page's explanation, made by the model the core holds: a model
/// switch (page state 'loading' while the new one loads) supersedes it before the store's result
/// changes, and the core then no longer has its image.
export function isCurrent(result) {
  const { result: shown, model, page } = get();
  return shown === result && page !== 'loading' && (!result.madeWith || result.madeWith === model);
}

/// Whether `result` is a Score-CAM explanation (either variant): the views that show its masked
/// inputs need one.
export function isScoreCam(result) {
  return Boolean(result?.method?.startsWith('scorecam'));
}

/// `promise`'s value while `result` is current; an AbortError once it is not, whether the call
/// succeeded or failed: work for a superseded explanation fails as the core's state moves on
/// ("no image yet" after a model switch), and that is no error of the visitor's.
async function current(result, promise) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    throw isCurrent(result) ? err : stale();
  }
  if (!isCurrent(result)) throw stale();
  return value;
}

/// Remembers `fn()`'s promise under `key`, forgetting it if it fails (so a later call retries).
function once(c, key, fn) {
  if (!c[key]) {
    c[key] = fn();
    c[key].catch(() => {
      c[key] = null;
    });
  }
  return c[key];
}

/// `{channels, height, width, data, constant}` of the image `result` explains.
export function activations(result) {
  return once(cacheOf(result), 'activations', () => current(result, session.call('activations', [])));
}

/// One record per channel, as `window.scorecam.channels()` gives them: `{channel, constant,
/// score}` (score: null where nothing was scored) plus `weight`.
export function channelRecords(result) {
  return (result?.channels ?? []).map((c) => ({ channel: c.channel, constant: c.constant, score: c.score ?? null, weight: c.weight }));
}

/// Channel `k` as Score-CAM masks with it: `{mask, masked (RGBA), size}`.
export function channelView(result, k) {
  return current(result, session.call('channelView', [result.request, k]));
}

/// The map from only the channels in `keep` (a Set): what the build-up slider shows.
export function mapFromChannels(result, keep) {
  const scores = new Float32Array(result.channels.length).fill(NaN);
  for (const c of result.channels) if (keep.has(c.channel) && c.score !== null) scores[c.channel] = c.score;
  return current(result, session.call('partialMap', [result.request, scores]));
}

/// Grad-CAM and Grad-CAM++ of the same image and class: `{gradcam, gradcampp}`, each an explain
/// result with its `request`.
export function comparison(result) {
  return once(cacheOf(result), 'comparison', async () => {
    const out = {};
    for (const method of COMPARED) {
      const request = { class: result.explained.class, method, options: {} };
      const r = await current(result, session.call('explain', [request], { onProgress: () => isCurrent(result) }));
      out[method] = { ...r, request };
    }
    return out;
  });
}

/// The deletion and insertion curves of `target`'s map (default: `result` itself; else one of
/// its comparison results), computed on every worker a few points at a time:
/// `{deletion: {curve, auc}, insertion: {curve, auc}}`. `onPoints(partial)` is told as points come
/// in (`partial`: `{deletion, insertion}` Float32Arrays, NaN where not computed yet).
export function curves(result, { target = result, onPoints = null } = {}) {
  const c = cacheOf(result);
  const key = target.method;
  let entry = c.curves.get(key);
  if (!entry) {
    entry = { listeners: new Set(), partial: null, promise: null };
    c.curves.set(key, entry);
    entry.promise = computeCurves(result, target, entry);
    entry.promise.catch(() => c.curves.delete(key));
  }
  if (onPoints) {
    entry.listeners.add(onPoints);
    if (entry.partial) onPoints(entry.partial);
  }
  return entry.promise;
}

async function computeCurves(result, target, entry) {
  const n = await current(result, session.call('curveLength', []));
  const partial = { deletion: new Float32Array(n).fill(NaN), insertion: new Float32Array(n).fill(NaN) };
  entry.partial = partial;
  const tasks = [];
  const where = [];
  for (const kind of ['deletion', 'insertion']) {
    for (let from = 0; from < n; from += CURVE_CHUNK) {
      tasks.push(['curvePoints', [target.request, target.map, kind, from, Math.min(n, from + CURVE_CHUNK)]]);
      where.push([kind, from]);
    }
  }
  await current(result, session.spread(tasks, (i, values) => {
    if (!isCurrent(result)) return;
    const [kind, from] = where[i];
    partial[kind].set(values, from);
    for (const fn of entry.listeners) fn(partial);
  }, () => !isCurrent(result)));
  return {
    deletion: { curve: partial.deletion, auc: wasm.auc(partial.deletion) },
    insertion: { curve: partial.insertion, auc: wasm.auc(partial.insertion) },
  };
}

/// Average Drop / Increase of `result`'s map under the paper's and the libraries' protocols.
export function dropIncrease(result) {
  return once(cacheOf(result), 'dropIncrease', async () => ({
    paper: await current(result, session.call('dropIncrease', [result.request, result.map, 'paper'])),
    library: await current(result, session.call('dropIncrease', [result.request, result.map, 'library'])),
  }));
}

/// The explanation of `result`'s class by `method` after `stage` steps of the cascading
/// randomisation (seed 0, as `scorecam sanity`): `{groups, stage, map, …}`; stage 0 is the intact
/// network.
export function sanityStage(result, method, stage, onProgress = () => {}) {
  const { stages } = cacheOf(result);
  const key = `${method}:${stage}`;
  if (!stages.has(key)) {
    const [, weights] = session.modelFile() ?? [];
    if (!weights) return Promise.reject(new Error('The model file is not at hand: reload the model.'));
    const request = method === result.method ? result.request : explainRequest(result.explained.class, method);
    const p = current(result, session.call('randomised', [request, weights, stage, 0], {
      onProgress: (prog) => {
        if (!isCurrent(result)) return false;
        onProgress(prog);
        return true;
      },
    }));
    stages.set(key, p);
    p.catch(() => stages.delete(key));
  }
  return stages.get(key);
}
