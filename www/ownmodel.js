// The visitor's own model: an ONNX file (docs/onnx.md), or torchvision's VGG16 as a .pth, dropped
// on the page or picked, read with
// a progress bar, imported into the app's form (the int8 weight file carrying the graph, and a
// manifest) by the wasm core in a worker of its own, which is then ended (the f32 weights go with
// it), kept in Cache Storage under the file's SHA-256, and listed in the picker beside the
// installed models. Nothing leaves the machine. Share links name such a model (file name,
// SHA-256, layer, preprocessing); opened elsewhere, the page asks for that file and checks it.

import { $, make } from './dom.js';
import { get, set } from './store.js';
import { CoreWorker } from './workers.js';
import { session, wasm } from './core.js';

const CACHE = 'scorecam-own-v1';
/// The largest model file taken (its f32 weights, the int8 copy and the import's work must fit a
/// worker's wasm memory; ONNX files over 2 GB cannot hold their weights inside anyway).
export const MAX_MODEL_BYTES = 768 * 2 ** 20;
const MODEL_EXTENSIONS = /\.(onnx|pth|pt|safetensors)$/i;

/// Whether a dropped or picked file is a model rather than an image: by its name, or (unnamed
/// bytes) by its first byte, an ONNX file's `ir_version` field.
export async function isModelFile(blob) {
  if (blob.name) return MODEL_EXTENSIONS.test(blob.name);
  const head = new Uint8Array(await blob.slice(0, 1).arrayBuffer());
  return head[0] === 0x08;
}

// ---------------------------------------------------------------- storage

async function openCache() {
  try {
    return 'caches' in self ? await caches.open(CACHE) : null;
  } catch {
    return null;
  }
}

const keyOf = (id, part) => new URL(`own/${id}/${part}`, location.href).href;
const INDEX = () => new URL('own/index.json', location.href).href;

/// The visitor's models, as stored: [{id (the source file's SHA-256), name, file, bytes, layer,
/// weightBytes}].
export async function ownModels() {
  const cache = await openCache();
  const res = await cache?.match(INDEX());
  if (!res) return [];
  try {
    const list = await res.json();
    return Array.isArray(list) ? list.filter((m) => /^[0-9a-f]{64}$/.test(m?.id ?? '')) : [];
  } catch {
    return [];
  }
}

async function writeIndex(cache, list) {
  await cache.put(INDEX(), new Response(JSON.stringify(list), { headers: { 'content-type': 'application/json' } }));
}

/// Stores an imported model (the manifest text and the int8 file) and lists it.
async function store(record, manifest, weights) {
  const cache = await openCache();
  if (!cache) throw new Error('This browser cannot keep your model (no Cache Storage here, e.g. a private window or a page not served over HTTPS): it is used for this visit only.');
  await cache.put(keyOf(record.id, 'model.safetensors'), new Response(weights, { headers: { 'content-type': 'application/octet-stream' } }));
  await cache.put(keyOf(record.id, 'model.json'), new Response(manifest, { headers: { 'content-type': 'application/json' } }));
  const list = (await ownModels()).filter((m) => m.id !== record.id);
  await writeIndex(cache, [...list, record]);
}

/// The stored files of own model `id`: {manifest (text), weights (Uint8Array)}, or null.
export async function ownModelFiles(id) {
  const cache = await openCache();
  const [m, w] = await Promise.all([cache?.match(keyOf(id, 'model.json')), cache?.match(keyOf(id, 'model.safetensors'))]);
  if (!m || !w) return null;
  return { manifest: await m.text(), weights: new Uint8Array(await w.arrayBuffer()) };
}

/// Forgets own model `id`.
export async function removeOwnModel(id) {
  const cache = await openCache();
  if (!cache) return;
  await cache.delete(keyOf(id, 'model.json'));
  await cache.delete(keyOf(id, 'model.safetensors'));
  await writeIndex(cache, (await ownModels()).filter((m) => m.id !== id));
}

/// The picker's entry for a stored own model.
export function ownEntry(record) {
  return { name: `own-${record.id.slice(0, 16)}`, display_name: record.name, own: record, bytes: record.weightBytes };
}

// ---------------------------------------------------------------- reading and importing

/// The visitor cancelled: the dialog's Cancel (or Escape) while a file is read or imported.
const aborted = () => Object.assign(new Error('cancelled'), { name: 'AbortError' });

/// `blob`'s bytes, read with `onProgress(received, total)`; refused above MAX_MODEL_BYTES before
/// anything is read. `job.cancelled` stops it.
async function readAll(blob, label, onProgress, job) {
  const total = blob.size;
  if (total > MAX_MODEL_BYTES) throw new Error(`${label} is ${(total / 2 ** 20).toFixed(0)} MB; the page takes models of up to ${MAX_MODEL_BYTES / 2 ** 20} MB.`);
  if (!total) throw new Error(`${label} is empty.`);
  const bytes = new Uint8Array(total);
  let received = 0;
  const reader = blob.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (job.cancelled) {
      reader.cancel();
      throw aborted();
    }
    if (done) break;
    if (received + value.length > total) throw new Error(`${label} changed while it was read.`);
    bytes.set(value, received);
    received += value.length;
    onProgress(received, total);
  }
  if (received !== total) throw new Error(`${label} could not be read whole (${received} of ${total} bytes).`);
  return bytes;
}

/// Imports `bytes` (a model file called `file`, handed over: the caller keeps no copy) in a
/// worker of its own: resolves with {manifest, weights, info, peakBytes} (peakBytes: that
/// worker's wasm memory at the end, which only grows: the import's peak). The worker is then
/// ended, and the f32 weights it held with it.
async function importInWorker(bytes, file, options, job) {
  const worker = new CoreWorker();
  job.worker = worker;
  try {
    await worker.call('init', [session.glueUrl, session.module, 'cpu']);
    return await worker.call('importModel', [bytes, file, options], { transfer: [bytes.buffer] });
  } catch (err) {
    throw job.cancelled ? aborted() : err;
  } finally {
    job.worker = null;
    worker.terminate('the import is done');
  }
}

/// Lower-case hex SHA-256 of `bytes`: Web Crypto, or the core's where `crypto.subtle` is missing
/// (a page served over plain HTTP from another host).
async function sha256(bytes) {
  if (globalThis.crypto?.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  return wasm.sha256Hex(bytes);
}

/// Class names from a labels file: one a line, or a JSON list.
export function parseLabels(text) {
  const t = text.replace(/^\uFEFF/, '');
  let names;
  if (t.trimStart().startsWith('[')) {
    try {
      names = JSON.parse(t);
    } catch {
      throw new Error('The labels file is not a JSON list of names.');
    }
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new Error('The labels file is not a JSON list of names.');
  } else {
    names = t.replace(/[\r\n]+$/, '').split(/\r?\n/).map((l) => l.trim());
  }
  const empty = names.findIndex((n) => !n);
  if (!names.length || empty >= 0) throw new Error(`The labels file has an empty name (line ${empty + 1}): one class a line.`);
  return names;
}

async function labelsFrom(labels) {
  if (labels === undefined || labels === null) return null;
  if (Array.isArray(labels)) return labels.map(String);
  const text = typeof labels === 'string' ? labels : await new Blob([labels]).text();
  return parseLabels(text);
}

/// What the dialog (or loadOwnModel) decided: the import's options.
function importOptions({ labels, layer, inputSize, mean, std, name }) {
  const o = {};
  if (labels) o.labels = labels;
  if (layer) o.layer = layer;
  if (inputSize) o.input_size = inputSize;
  if (mean) o.mean = mean;
  if (std) o.std = std;
  if (name) o.name = name;
  return o;
}

// ---------------------------------------------------------------- the dialog

const dialog = () => $('own-dialog');

function showProgress(text, received = 0, total = 1) {
  $('own-status').textContent = text;
  $('own-progress').max = total;
  $('own-progress').value = received;
  $('own-progress').hidden = false;
}

function fillInfo(info, record) {
  $('own-name').value = info.name;
  const names = {
    labels: '',
    file: ', named by the file',
    imagenet: ' (ImageNet’s names, as it has 1000 outputs; a labels file replaces them)',
    numbered: ' (“class 0”, “class 1”, … until you give labels)',
  }[info.class_names] ?? '';
  $('own-facts').textContent = `${info.classes} classes${names}, ${(info.parameters / 1e6).toFixed(2)} M parameters; stored in ${(info.weight_bytes / 1e6).toFixed(1)} MB (int8).`;
  $('own-layer').replaceChildren(...info.layers.map((l) => make('option', { value: l.name, textContent: `${l.name} (${l.shape.join(' × ')})` })));
  $('own-layer').value = record.layer;
  $('own-size').value = String(info.input_size);
  $('own-size').disabled = info.fixed_size;
  $('own-mean').value = info.normalisation.mean.map((v) => +v.toFixed(4)).join(', ');
  $('own-std').value = info.normalisation.std.map((v) => +v.toFixed(4)).join(', ');
  $('own-labels').value = '';
  $('own-memory').textContent = `Imported in ${(record.importMs / 1000).toFixed(1)} s; the import's worker peaked at ${(record.peakBytes / 2 ** 20).toFixed(0)} MiB of memory and was then ended.`;
  $('own-details').hidden = false;
}

function readThree(id, what) {
  const v = $(id).value.split(',').map((x) => Number(x.trim()));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new Error(`The ${what} is three numbers, e.g. 0.485, 0.456, 0.406.`);
  if (what.includes('deviation') && v.some((x) => !(x > 0))) throw new Error('Each standard deviation must be above 0.');
  return v;
}

/// Waits for the visitor to confirm the dialog (or cancel it: rejects with an AbortError).
function confirmed() {
  return new Promise((resolve, reject) => {
    const done = (ok) => () => {
      $('own-use').onclick = null;
      $('own-cancel').onclick = null;
      dialog().oncancel = null;
      if (ok) resolve();
      else reject(Object.assign(new Error('cancelled'), { name: 'AbortError' }));
    };
    $('own-use').onclick = done(true);
    $('own-cancel').onclick = done(false);
    dialog().oncancel = done(false); // Escape
  });
}

/// The manifest with the visitor's name, class names and normalisation (the manifest is not
/// part of the weight file's hash; the core checks it against the network when it loads).
function patched(manifestText, { name, labels, mean, std }) {
  const m = JSON.parse(manifestText);
  if (name) m.name = name;
  if (labels) m.class_names = labels;
  if (mean) m.normalisation.mean = mean;
  if (std) m.normalisation.std = std;
  return JSON.stringify(m);
}

/// Brings a model in: reads `blob` (an .onnx file, or VGG16's .pth), imports it, lets the visitor check and adjust
/// it in the dialog (unless `interactive` is false: the window.scorecam API), stores it and
/// returns its picker entry. `expect`: the SHA-256 a share link names (another file is refused).
/// `choices`: {labels (a labels file's text, Blob or a list), layer, name, inputSize, mean, std}.
/// Throws with a message for the visitor; the current model is untouched (the caller selects
/// the new one).
export async function bringModel(blob, { interactive = true, expect = null, choices = {} } = {}) {
  const file = blob.name || 'model.onnx';
  const label = `“${file}”`;
  if (blob.name && !MODEL_EXTENSIONS.test(file)) {
    throw new Error(`${label} is not a model file: the page takes networks exported to ONNX (.onnx; docs/onnx.md shows how, for PyTorch and Keras), and torchvision's VGG16 as a .pth.`);
  }
  const d = dialog();
  $('own-details').hidden = true;
  $('own-use').disabled = true;
  $('own-error').textContent = '';
  $('own-title').textContent = `Your model: ${file}`;
  // Cancel (or Escape) while the file is read or imported ends that work.
  const job = { cancelled: false, worker: null };
  const cancel = () => {
    job.cancelled = true;
    job.worker?.terminate('cancelled');
  };
  $('own-cancel').onclick = cancel;
  d.oncancel = cancel;
  if (interactive && !d.open) d.showModal();
  try {
    const read = () => readAll(blob, label, (r, t) => showProgress(`Reading ${label}: ${(r / 1e6).toFixed(1)} of ${(t / 1e6).toFixed(1)} MB`, r, t), job);
    showProgress(`Reading ${label}…`);
    let labels = await labelsFrom(choices.labels);
    const options = (size) => importOptions({ labels, layer: choices.layer, inputSize: size ?? choices.inputSize, mean: choices.mean, std: choices.std, name: choices.name });
    const t0 = performance.now();
    let bytes = await read();
    // A share link's file is checked before anything is imported with the link's choices.
    if (expect) {
      const id = await sha256(bytes);
      if (id !== expect) throw new Error(`${label} is not the file the link names: its SHA-256 is ${id.slice(0, 12)}…, the link’s ${expect.slice(0, 12)}….`);
    }
    showProgress(`Importing ${label}: checking every operator and shape, converting the weights to int8…`);
    let imported = await importInWorker(bytes, file, options(), job);
    bytes = null; // handed to the worker
    const record = { id: imported.info.source_sha256, file, bytes: blob.size, importMs: performance.now() - t0, peakBytes: imported.peakBytes, layer: imported.info.target_layer };
    let manifest = imported.manifest;
    if (interactive) {
      $('own-progress').hidden = true;
      $('own-status').textContent = `${label} is ready. Check what it is and how it reads images, then use it: it stays on this computer.`;
      fillInfo(imported.info, record);
      $('own-use').disabled = false;
      for (;;) {
        await confirmed();
        try {
          $('own-error').textContent = '';
          const size = Number($('own-size').value);
          if (!imported.info.fixed_size && size !== imported.info.input_size) {
            if (!(Number.isInteger(size) && size >= 8 && size <= 1024)) throw new Error('The input size is a whole number of pixels from 8 to 1024.');
            showProgress(`Importing ${label} again for ${size} × ${size} images…`);
            imported = await importInWorker(await read(), file, options(size), job);
            $('own-progress').hidden = true;
            fillInfo(imported.info, record);
          }
          const labelsFile = $('own-labels').files?.[0];
          if (labelsFile) labels = parseLabels(await labelsFile.text());
          if (labels && labels.length !== imported.info.classes) throw new Error(`The labels file names ${labels.length} classes; the model has ${imported.info.classes}.`);
          record.layer = $('own-layer').value || record.layer;
          const name = $('own-name').value.trim();
          manifest = patched(imported.manifest, { name, labels, mean: readThree('own-mean', 'mean'), std: readThree('own-std', 'standard deviation') });
          break;
        } catch (err) {
          if (err?.name === 'AbortError') throw err;
          $('own-error').textContent = err.message;
        }
      }
    } else if (choices.layer) {
      record.layer = choices.layer;
    }
    const m = JSON.parse(manifest);
    Object.assign(record, { name: m.name, weightBytes: imported.weights.length, inputSize: m.input_size, normalisation: m.normalisation });
    await store(record, manifest, imported.weights);
    return ownEntry(record);
  } finally {
    $('own-cancel').onclick = null;
    d.oncancel = null;
    if (d.open) d.close();
  }
}

export function init() {
  $('add-model').addEventListener('click', () => $('model-file-input').click());
}
