// Choosing a model: the list in www/models/index.json and the visitor's own models
// (www/ownmodel.js), the picker, and switching. A switch that fails (a bad weight file, no memory
// left) says why and leaves the previous model in use.

import { $, make } from './dom.js';
import { get, set, newRun } from './store.js';
import { session, serial, describe, guard, showNotice } from './core.js';
import { analyseImage } from './explain.js';
import { loadModelFiles } from './models.js';
import { bringModel, ownEntry, ownModelFiles, ownModels, removeOwnModel, init as initOwn } from './ownmodel.js';
import { wantedOwnModel } from './share.js';

const option = (m) => make('option', { value: m.name, textContent: `${m.display_name ?? m.name} (${(m.bytes / 1e6).toFixed(1)} MB)` });

/// The picker: the installed models, then the visitor's own.
function fillPicker() {
  const { models, model } = get();
  const installed = models.filter((m) => !m.own);
  const own = models.filter((m) => m.own);
  const group = make('optgroup', { label: 'Your models' });
  group.replaceChildren(...own.map(option));
  $('model-select').replaceChildren(...installed.map(option), ...(own.length ? [group] : []));
  if (model) $('model-select').value = model.entry.name;
  $('remove-model').hidden = !model?.entry.own;
}

/// Reads the installed models and the visitor's stored ones into the store and the picker.
export async function listModels() {
  const res = await fetch('www/models/index.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error('No models are installed (www/models/index.json is missing): run scripts/setup.sh.');
  const index = await res.json();
  const models = Array.isArray(index.models) ? index.models : [];
  if (!models.length) throw new Error('www/models/index.json lists no models: run scripts/setup.sh.');
  const own = (await ownModels().catch(() => [])).map(ownEntry);
  set({ models: [...models, ...own] });
  fillPicker();
}

/// VGG16 is the paper's model, but on the CPU it takes over a minute (73 s on 2 cores here, with
/// 2 workers; docs/benchmarks.md): the light one there.
export function defaultModel() {
  const { models, backend } = get();
  const byArch = (a) => models.find((m) => m.arch === a && !m.own);
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
    return serial(() => session.loadModel(manifestText, bytes, entry.own?.layer ?? null));
  };
  try {
    const { info, fromCache } = entry.own
      ? await loadOwn(entry, build)
      : await loadModelFiles(entry, build, (received, total) => {
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

/// An own model's files, from Cache Storage (they are nowhere else).
async function loadOwn(entry, build) {
  const files = await ownModelFiles(entry.own.id);
  if (!files) throw new Error(`Your model “${entry.own.name}” is no longer stored in this browser (its storage was cleared): drop its file again.`);
  return { info: await build(files.manifest, files.weights), fromCache: true };
}

/// After a failed switch (`err`), the picker shows the previous model again and the page goes on
/// with it: still loaded (a failed check changes nothing in the core) or loaded again.
async function restore(previous, err) {
  $('model-select').value = previous.entry.name;
  $('remove-model').hidden = !previous.entry.own;
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
  if (previous && !previous.entry.own) lastInstalled = previous.entry.name;
  newRun(); // cancel whatever runs on the old model
  $('model-select').value = name;
  $('remove-model').hidden = !entry.own;
  set({ page: 'loading' });
  try {
    await load(entry);
  } catch (err) {
    if (previous) await restore(previous, err);
    throw err;
  }
  // The class explained carries over only between models with the same classes (ImageNet's).
  const { classIndex, image, model } = get();
  const same = (a, b) => a && b && a.length === b.length && a.every((n, i) => n === b[i]);
  if (classIndex !== null && !same(previous?.info.class_names, model.info.class_names)) set({ classIndex: null });
  if (image) await analyseImage();
  else if (settle) set({ page: 'ready' });
}

/// Brings the visitor's model file in (the dialog of www/ownmodel.js), lists it and switches to
/// it; on any failure the current model stays loaded and selected. `options`: bringModel's.
export async function addOwnModel(file, options = {}) {
  const entry = await bringModel(file, options);
  const models = get().models.filter((m) => m.name !== entry.name);
  set({ models: [...models, entry] });
  fillPicker();
  await selectModel(entry.name);
  return entry;
}

/// The installed model in use before the visitor's own (where removing one goes back to).
let lastInstalled = null;

/// Forgets the selected own model and goes back to the installed one used before it (or the
/// default one).
async function removeSelected() {
  const { model, models } = get();
  if (!model?.entry.own) return;
  const entry = model.entry;
  const back = models.find((m) => m.name === lastInstalled) ?? defaultModel();
  await selectModel(back.name);
  await removeOwnModel(entry.own.id);
  set({ models: get().models.filter((m) => m !== entry) });
  fillPicker();
  showNotice(`“${entry.own.name}” is removed from this browser.`);
}

export function init() {
  initOwn();
  $('model-select').addEventListener('change', guard((e) => selectModel(e.target.value)));
  $('model-file-input').addEventListener('change', guard((e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    const wanted = wantedOwnModel();
    if (wanted) return wanted.take(file);
    return addOwnModel(file).catch((err) => {
      if (err?.name !== 'AbortError') throw err;
    });
  }));
  $('remove-model').addEventListener('click', guard(removeSelected));
}
