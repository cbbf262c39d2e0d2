// Choosing a model: the list in www/models/index.json, the picker, and switching. A switch that
// fails (a bad weight file, no memory left) says why and leaves the previous model in use.

import { $, make } from './dom.js';
import { get, set, newRun } from './store.js';
import { session, serial, describe, guard } from './core.js';
import { analyseImage } from './explain.js';
import { loadModelFiles } from './models.js';

/// Reads the installed models into the store and the picker.
export async function listModels() {
  const res = await fetch('www/models/index.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error('No models are installed (www/models/index.json is missing): run scripts/setup.sh.');
  const index = await res.json();
  const models = Array.isArray(index.models) ? index.models : [];
  if (!models.length) throw new Error('www/models/index.json lists no models: run scripts/setup.sh.');
  $('model-select').replaceChildren(...models.map((m) => make('option', { value: m.name, textContent: `${m.display_name ?? m.name} (${(m.bytes / 1e6).toFixed(1)} MB)` })));
  set({ models });
}

/// VGG16 is the paper's model, but on the CPU it takes over a minute (73 s on 2 cores here, with
/// 2 workers; docs/benchmarks.md): the light one there.
export function defaultModel() {
  const { models, backend } = get();
  const byArch = (a) => models.find((m) => m.arch === a);
  if (backend.name === 'cpu') return byArch('efficientnet_lite0') ?? models[0];
  return byArch('vgg16') ?? byArch('efficientnet_lite0') ?? models[0];
}

/// Downloads `entry`'s weights (or takes them from Cache Storage), has the core check and build
/// them, and makes it the store's model.
async function load(entry) {
  const label = entry.display_name ?? entry.name;
  const text = $('model-status-text');
  const progress = $('model-progress');
  text.textContent = `Loading ${label}…`;
  $('model-status').hidden = false;
  const t0 = performance.now();
  let t1 = t0;
  const build = async (manifestText, bytes) => {
    t1 = performance.now();
    text.textContent = `Preparing ${label}…`;
    await new Promise((r) => setTimeout(r, 0)); // let the message paint before the busy load
    return serial(() => session.loadModel(manifestText, bytes));
  };
  try {
    const { info, fromCache } = await loadModelFiles(entry, build, (received, total) => {
      progress.max = total;
      progress.value = received;
      text.textContent = `Downloading ${label}: ${(received / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
    });
    // buildMs includes choosing the convolution kernels (the probe, unless it was cached).
    const probe = session.info?.convProbe ?? null;
    const timing = {
      name: entry.name, fromCache, fetchMs: t1 - t0, buildMs: performance.now() - t1,
      weightBytes: info.weight_bytes, deviceWeights: info.device_weights, weightBytesOnDevice: info.weight_bytes_on_device,
      convKernels: info.conv_kernels, probe: probe && { fromCache: probe.fromCache, layers: probe.layers.length },
    };
    set({ model: { entry, info }, timings: { ...get().timings, model: timing } });
  } finally {
    $('model-status').hidden = true;
  }
}

/// After a failed switch (`err`), the picker shows the previous model again and the page goes on
/// with it: still loaded (a failed check changes nothing in the core) or loaded again.
async function restore(previous, err) {
  $('model-select').value = previous.entry.name;
  const { image, result } = get();
  const kept = session.model()?.name === previous.info.name;
  if (!kept) {
    set({ model: null });
    try {
      await load(previous.entry);
    } catch (again) {
      $('model-select').value = '';
      throw new Error(`${describe(err)} The previous model could not be loaded again either: ${describe(again)}`);
    }
  }
  // A reloaded model has no image yet; an explanation the switch interrupted runs again.
  if (image && (!kept || !result || result.partial)) await analyseImage();
}

/// Switches to the model `name` (an index.json entry) and explains the current image with it;
/// `settle: false` leaves the page loading (an image follows).
export async function selectModel(name, { settle = true } = {}) {
  const { models, model: previous } = get();
  const entry = models.find((m) => m.name === name);
  if (!entry) throw new Error(`Unknown model ${JSON.stringify(name)}`);
  if (previous?.entry === entry) return;
  newRun(); // cancel whatever runs on the old model
  $('model-select').value = name;
  set({ page: 'loading' });
  try {
    await load(entry);
  } catch (err) {
    if (previous) await restore(previous, err);
    throw err;
  }
  const { classIndex, image, model } = get();
  if (classIndex !== null && classIndex >= model.info.class_names.length) set({ classIndex: null });
  if (image) await analyseImage();
  else if (settle) set({ page: 'ready' });
}

export function init() {
  $('model-select').addEventListener('change', guard((e) => selectModel(e.target.value)));
}
