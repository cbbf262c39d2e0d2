// The page: inputs, model download and cache, drawing, share links. All computing (resizing and
// normalising the photo, the network, Score-CAM, colouring the map) happens in the wasm core
// (src/web.rs), the same code the command line runs.
//
// Nothing that comes from a file, a URL or a shared link is ever inserted as HTML: text goes in
// through textContent, options through the DOM API.

import { parseShareFragment, buildShareFragment, base64UrlToBytes, bytesToBase64Url, LIMITS } from './share.js';
import { loadModelFiles } from './models.js';

const $ = (id) => document.getElementById(id);

const MAX_SIDE = 1024; // larger photos are scaled down before they enter wasm
const DISPLAY_SIDE = 448; // the canvas shows the image at most this large per panel
const SHARE_SIDE = 320; // the shared JPEG's longest side

const app = {
  wasm: null,
  backend: null,
  models: [], // entries of models/index.json
  model: null, // {entry, info}
  image: null, // {canvas, width, height, source: {kind: 'bytes'} | {kind: 'url', url}}
  top5: [],
  result: null, // the finished explanation, or the partial one while running
  classIndex: null, // requested class (null: the top one)
  run: 0, // bumped by every new image, class, option or model: older runs cancel and are ignored
  options: { variant: 'official', topK: null },
  view: { layout: 'overlay', cmap: 'jet', opacity: 0.5 },
  timings: {},
  settled: null,
};

// The GPUDevice that wgpu requests, kept so the page learns when it is lost (GPUDevice.lost):
// a driver reset, a GPU process crash, or device.destroy() in the tests.
const gpu = { device: null, lost: null };
if (globalThis.GPUAdapter?.prototype.requestDevice) {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    gpu.device = device;
    device.lost.then((info) => {
      gpu.lost = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
      app.run += 1; // whatever runs is void
      fail(new Error('device lost'));
    });
    return device;
  };
}

// ---------------------------------------------------------------- state and messages

function setState(state) {
  document.body.dataset.state = state;
  if (state === 'done' || state === 'error' || state === 'ready') {
    app.settled?.resolve(state);
    app.settled = null;
  }
}

function showError(message, { restart = false, cpu = false } = {}) {
  $('alert-text').textContent = message;
  $('alert-restart').hidden = !restart;
  $('alert-cpu').hidden = !cpu;
  $('alert').hidden = false;
  setState('error');
}

function clearError() {
  $('alert').hidden = true;
  $('alert-text').textContent = '';
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function describe(err) {
  if (err instanceof WebAssembly.RuntimeError) {
    const panic = app.wasm?.lastPanic?.();
    return `Internal error in the wasm core${panic ? `: ${panic}` : ''}. Restart the page to continue.`;
  }
  return err?.message ? String(err.message) : String(err);
}

function isAbort(err) {
  return err?.name === 'AbortError';
}

/// Wasm calls run one after another (a new call waits for a cancelled run to stop), so the
/// core's current model and image always belong together.
let chain = Promise.resolve();
function serial(fn) {
  const p = chain.then(fn);
  chain = p.catch(() => {});
  return p;
}

/// Errors from the core: a lost device or a panic leave the module unusable, so those offer a
/// restart; anything else is a message and the page goes on.
function fail(err) {
  if (isAbort(err)) return;
  console.error(err);
  if (gpu.lost) {
    showError(`The GPU device was lost (${gpu.lost}). Restart to carry on; your image and settings are kept.`, { restart: true, cpu: true });
  } else if (err instanceof WebAssembly.RuntimeError) {
    showError(describe(err), { restart: true });
  } else {
    showError(describe(err));
  }
}

// ---------------------------------------------------------------- model

async function loadModelList() {
  const res = await fetch('www/models/index.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error('No models are installed (www/models/index.json is missing): run scripts/setup.sh.');
  const index = await res.json();
  const models = Array.isArray(index.models) ? index.models : [];
  if (!models.length) throw new Error('www/models/index.json lists no models: run scripts/setup.sh.');
  return models;
}

function defaultModel(models) {
  const byArch = (a) => models.find((m) => m.arch === a);
  // VGG16 is the paper's model, but on the CPU it takes many minutes: prefer the light one there.
  if (app.backend.backend === 'cpu') return byArch('efficientnet_lite0') ?? models[0];
  return byArch('vgg16') ?? byArch('efficientnet_lite0') ?? models[0];
}

function fillModelPicker() {
  const select = $('model-select');
  select.replaceChildren(...app.models.map((m) => {
    const o = document.createElement('option');
    o.value = m.name;
    o.textContent = `${m.display_name ?? m.name} (${(m.bytes / 1e6).toFixed(1)} MB)`;
    return o;
  }));
}

async function selectModel(name, { settle = true } = {}) {
  const entry = app.models.find((m) => m.name === name);
  if (!entry) throw new Error(`Unknown model ${JSON.stringify(name)}`);
  if (app.model?.entry === entry) return;
  app.run += 1; // cancel whatever runs on the old model
  $('model-select').value = name;
  setState('loading');
  const status = $('model-status');
  status.hidden = false;
  const progress = $('model-progress');
  const text = $('model-status-text');
  const t0 = performance.now();
  let t1 = t0;
  const build = async (manifestText, bytes) => {
    t1 = performance.now();
    text.textContent = `Preparing ${entry.display_name ?? entry.name}…`;
    await new Promise((r) => setTimeout(r, 0)); // let the message paint before the busy load
    return serial(async () => app.wasm.loadModel(manifestText, bytes));
  };
  const { info, fromCache } = await loadModelFiles(entry, build, (received, total) => {
    progress.max = total;
    progress.value = received;
    text.textContent = `Downloading ${entry.display_name ?? entry.name}: ${(received / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
  });
  const t2 = performance.now();
  app.timings.model = { name, fromCache, fetchMs: t1 - t0, buildMs: t2 - t1 };
  app.model = { entry, info };
  if (app.classIndex !== null && app.classIndex >= info.classNames.length) app.classIndex = null;
  status.hidden = true;
  fillClassNames(info.classNames);
  if (app.image) await analyseImage();
  else if (settle) setState('ready');
}

function fillClassNames(names) {
  $('class-names').replaceChildren(...names.map((n, i) => {
    const o = document.createElement('option');
    o.value = `${i}: ${n}`;
    return o;
  }));
}

// ---------------------------------------------------------------- image input

/// The browser could not decode the bytes as an image.
class ImageDecodeError extends Error {}

async function decodeToCanvas(blob) {
  if (blob.size > LIMITS.imageBytes) {
    throw new Error(`This image is ${(blob.size / 1e6).toFixed(0)} MB; the limit is ${LIMITS.imageBytes / 1e6} MB.`);
  }
  let bitmap;
  try {
    // 'from-image' applies the EXIF orientation, as the CLI does.
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    const name = blob.name ? `“${blob.name}”` : 'This file';
    throw new ImageDecodeError(`${name} is not an image the browser can decode (corrupt, truncated or not an image).`);
  }
  const { width, height } = bitmap;
  if (!width || !height || width * height > LIMITS.imagePixels) {
    bitmap.close();
    throw new Error(`This image has ${width}x${height} pixels; the limit is ${LIMITS.imagePixels / 1e6} megapixels.`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas;
}

/// A new image: explains `classIndex`, by default its own top class (not the previous image's).
async function setImageBlob(blob, source, { classIndex = null } = {}) {
  app.run += 1; // a new image cancels the running explanation
  clearError();
  setState('explaining');
  const canvas = await decodeToCanvas(blob);
  app.image = { canvas, width: canvas.width, height: canvas.height, source };
  app.result = null;
  app.classIndex = classIndex;
  await analyseImage();
}

async function fetchImage(url) {
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    throw new Error('The image address is not a valid URL.');
  }
  if (!['http:', 'https:'].includes(parsed.protocol)) throw new Error('Only http and https image addresses are allowed.');
  let res;
  try {
    res = await fetch(parsed, { mode: 'cors', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch {
    throw new Error(`Could not fetch ${parsed.href}: the server must allow cross-origin requests (CORS).`);
  }
  if (!res.ok) throw new Error(`Could not fetch ${parsed.href}: HTTP ${res.status}.`);
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > LIMITS.imageBytes) throw new Error(`The image at ${parsed.href} is larger than ${LIMITS.imageBytes / 1e6} MB.`);
  return { blob: await res.blob(), href: parsed.href };
}

async function setImageUrl(url, options) {
  app.run += 1;
  clearError();
  setState('explaining');
  const { blob, href } = await fetchImage(url);
  await setImageBlob(blob, { kind: 'url', url: href }, options);
}

/// The unmasked forward pass (top-5), then the explanation.
async function analyseImage() {
  if (!app.model) return;
  const run = ++app.run;
  const { canvas, width, height } = app.image;
  const rgba = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  setState('explaining');
  const t0 = performance.now();
  const r = await serial(() => (run === app.run ? app.wasm.setImage(new Uint8Array(rgba.buffer), width, height) : null));
  if (!r || run !== app.run) return;
  app.timings.forwardMs = performance.now() - t0;
  app.top5 = r.top5;
  renderTop5();
  await explainClass(app.classIndex);
}

// ---------------------------------------------------------------- explaining

async function explainClass(classIndex) {
  if (!app.image || !app.model) return;
  const run = ++app.run;
  app.classIndex = classIndex;
  clearError();
  setState('explaining');
  const bar = $('run-progress');
  const text = $('run-status-text');
  $('run-status').hidden = false;
  bar.value = 0;
  text.textContent = 'Scoring the activation maps…';
  const size = app.model.info.inputSize;
  const t0 = performance.now();
  let firstMs = null;
  // Grad-CAM and Grad-CAM++ share the select with the Score-CAM variants: one gradient pass each.
  const gradient = ['gradcam', 'gradcampp'].includes(app.options.variant);
  const options = gradient
    ? { method: app.options.variant }
    : { method: 'scorecam', variant: app.options.variant, topK: app.options.topK ?? undefined };
  if (app.backend.backend === 'cpu') options.batchSize = 4; // short blocking stretches on the CPU
  const onProgress = (p) => {
    if (run !== app.run) return false; // superseded: cancel at this batch
    firstMs ??= performance.now() - t0;
    bar.max = p.total;
    bar.value = p.done;
    text.textContent = `Scored ${p.done} of ${p.total} activation maps`;
    if (p.map) {
      app.result = { partial: true, map: p.map, size, class: classIndex };
      scheduleDraw();
    }
    return true;
  };
  let result;
  try {
    result = await serial(() => (run === app.run ? app.wasm.explain(classIndex ?? -1, options, onProgress) : null));
  } catch (err) {
    if (isAbort(err)) return;
    throw err;
  }
  if (!result || run !== app.run) return; // a stale result never overwrites a newer one
  if (app.backend.backend === 'webgpu' && app.wasm.validationErrors() > 0 && $('notice').hidden) {
    showNotice('This GPU rejected some compute kernels (see the console). If a heatmap looks wrong, compare with the CPU: add ?backend=cpu to the address.');
  }
  app.timings.explain = { firstHeatmapMs: firstMs, totalMs: performance.now() - t0, stats: result.stats };
  app.result = result;
  app.classIndex = result.class;
  $('run-status').hidden = true;
  $('explained').textContent = `Explaining “${result.name}” (class ${result.class}, p = ${(result.probability * 100).toFixed(1)}%)`;
  renderTop5();
  draw();
  $('copy-link').disabled = false;
  $('download').disabled = false;
  setState('done');
}

function renderTop5() {
  const list = $('top5');
  list.replaceChildren(...app.top5.map((t) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.class = String(t.index);
    b.textContent = `${t.name} — ${(t.probability * 100).toFixed(1)}%`;
    if (app.result && !app.result.partial && app.result.class === t.index) b.setAttribute('aria-current', 'true');
    b.addEventListener('click', () => explainClass(t.index).catch(fail));
    li.append(b);
    return li;
  }));
}

// ---------------------------------------------------------------- drawing

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

/// The heatmap coloured by the core, at `w x h`, on its own canvas.
function heatmapCanvas(w, h) {
  const { map, size } = app.result;
  const rgba = app.wasm.renderHeatmap(map, size, w, h, app.view.cmap);
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), w, h), 0, 0);
  return c;
}

function drawOverlay(ctx, x, w, h, heat, alpha) {
  ctx.drawImage(app.image.canvas, x, 0, w, h);
  if (heat) {
    ctx.globalAlpha = alpha;
    ctx.drawImage(heat, x, 0, w, h);
    ctx.globalAlpha = 1;
  }
}

function draw() {
  const canvas = $('canvas');
  if (!app.image) return;
  const scale = Math.min(1, DISPLAY_SIDE / Math.max(app.image.width, app.image.height));
  const w = Math.round(app.image.width * scale);
  const h = Math.round(app.image.height * scale);
  const side = app.view.layout === 'side';
  canvas.width = side ? 3 * w : w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const heat = app.result ? heatmapCanvas(w, h) : null;
  if (side) {
    ctx.drawImage(app.image.canvas, 0, 0, w, h);
    if (heat) ctx.drawImage(heat, w, 0);
    drawOverlay(ctx, 2 * w, w, h, heat, app.view.opacity);
  } else {
    drawOverlay(ctx, 0, w, h, heat, app.view.opacity);
  }
}

function drawLegend() {
  const legend = $('legend');
  const n = legend.width;
  const rgba = app.wasm.colormapStrip(app.view.cmap, n);
  const strip = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), n, 1);
  const ctx = legend.getContext('2d');
  for (let y = 0; y < legend.height; y++) ctx.putImageData(strip, 0, y);
}

async function downloadPng() {
  if (!app.result || app.result.partial) return;
  const { width, height } = app.image;
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  drawOverlay(c.getContext('2d'), 0, width, height, heatmapCanvas(width, height), app.view.opacity);
  const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `scorecam-${app.result.name.replace(/[^\w-]+/g, '_')}.png`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ---------------------------------------------------------------- share links

/// A small JPEG of the image (longest side SHARE_SIDE, quality lowered until it fits).
async function shareJpeg() {
  const { canvas, width, height } = app.image;
  const scale = Math.min(1, SHARE_SIDE / Math.max(width, height));
  const c = document.createElement('canvas');
  c.width = Math.max(1, Math.round(width * scale));
  c.height = Math.max(1, Math.round(height * scale));
  const ctx = c.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvas, 0, 0, c.width, c.height);
  for (const quality of [0.85, 0.7, 0.55, 0.4]) {
    const blob = await new Promise((r) => c.toBlob(r, 'image/jpeg', quality));
    const bytes = new Uint8Array(await blob.arrayBuffer());
    if (bytes.length <= LIMITS.shareImageBytes) return bytes;
  }
  throw new Error('The image does not compress small enough for a link.');
}

async function shareLink() {
  if (!app.image || !app.model) throw new Error('Nothing to share yet.');
  const state = {
    model: app.model.entry.name,
    class: app.result?.partial ? app.classIndex : app.result?.class ?? app.classIndex,
    variant: app.options.variant,
    topk: app.options.topK,
    opacity: app.view.opacity,
    cmap: app.view.cmap,
    view: app.view.layout,
  };
  if (app.image.source.kind === 'url') state.src = app.image.source.url;
  else state.img = bytesToBase64Url(await shareJpeg());
  const url = new URL(location.href);
  url.search = '';
  url.hash = buildShareFragment(state);
  return url.href;
}

async function copyLink() {
  const link = await shareLink();
  history.replaceState(null, '', link);
  try {
    await navigator.clipboard.writeText(link);
    $('copy-status').textContent = `Link copied (${(link.length / 1024).toFixed(0)} KB).`;
  } catch {
    $('copy-status').textContent = 'The address bar now holds the link: copy it from there.';
  }
}

/// Applies a shared state; the image itself is loaded after the model.
function applySharedView(s) {
  if (s.cmap) app.view.cmap = s.cmap;
  if (s.view) app.view.layout = s.view;
  if (s.opacity !== undefined) app.view.opacity = s.opacity;
  if (s.variant) app.options.variant = s.variant;
  if (s.topk !== undefined) app.options.topK = s.topk;
  syncControls();
}

async function openShared(s) {
  if (s.class !== undefined && s.class >= app.model.info.classNames.length) {
    throw new Error(`The shared link names class ${s.class}, but this model has ${app.model.info.classNames.length} classes.`);
  }
  const options = { classIndex: s.class ?? null };
  if (s.img) {
    const blob = new Blob([base64UrlToBytes(s.img)], { type: 'image/jpeg' });
    await setImageBlob(blob, { kind: 'bytes' }, options).catch((err) => {
      throw err instanceof ImageDecodeError ? new Error('The shared link’s image is damaged (it does not decode as an image).') : err;
    });
  } else if (s.src) {
    await setImageUrl(s.src, options);
  }
}

// ---------------------------------------------------------------- controls

function syncControls() {
  $('cmap-select').value = app.view.cmap;
  $('view-select').value = app.view.layout;
  $('opacity').value = String(app.view.opacity);
  $('variant-select').value = app.options.variant;
  $('topk').value = app.options.topK ?? '';
}

function wireControls() {
  const guard = (fn) => (...args) => Promise.resolve().then(() => fn(...args)).catch(fail);
  $('pick-file').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', guard(async (e) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) await setImageBlob(file, { kind: 'bytes' });
  }));
  // Drop anywhere on the page.
  window.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  window.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) document.body.classList.remove('dragging');
  });
  window.addEventListener('drop', guard(async (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const file = e.dataTransfer?.files?.[0];
    if (file) return setImageBlob(file, { kind: 'bytes' });
    const url = e.dataTransfer?.getData('text/uri-list') || e.dataTransfer?.getData('text/plain');
    if (url) return setImageUrl(url.trim().split('\n')[0]);
    throw new Error('Nothing to explain in what was dropped: drop an image file.');
  }));
  window.addEventListener('paste', guard(async (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
    if (item) await setImageBlob(item.getAsFile(), { kind: 'bytes' });
  }));
  $('model-select').addEventListener('change', guard((e) => selectModel(e.target.value)));
  $('opacity').addEventListener('input', (e) => {
    app.view.opacity = Number(e.target.value);
    scheduleDraw();
  });
  $('cmap-select').addEventListener('change', (e) => {
    app.view.cmap = e.target.value;
    drawLegend();
    scheduleDraw();
  });
  $('view-select').addEventListener('change', (e) => {
    app.view.layout = e.target.value;
    scheduleDraw();
  });
  $('variant-select').addEventListener('change', guard((e) => {
    app.options.variant = e.target.value;
    return explainClass(app.classIndex);
  }));
  $('topk').addEventListener('change', guard((e) => {
    const k = Number.parseInt(e.target.value, 10);
    app.options.topK = Number.isFinite(k) && k > 0 ? k : null;
    return explainClass(app.classIndex);
  }));
  $('class-search').addEventListener('change', guard((e) => {
    const m = /^(\d+):/.exec(e.target.value);
    const names = app.model?.info.classNames ?? [];
    const index = m ? Number(m[1]) : names.findIndex((n) => n.toLowerCase() === e.target.value.trim().toLowerCase());
    if (!(index >= 0 && index < names.length)) throw new Error(`No class is called “${e.target.value}”.`);
    e.target.value = '';
    return explainClass(index);
  }));
  $('copy-link').addEventListener('click', guard(copyLink));
  $('download').addEventListener('click', guard(downloadPng));
  $('alert-close').addEventListener('click', () => {
    clearError();
    setState(app.result && !app.result.partial ? 'done' : 'ready');
  });
  $('alert-restart').addEventListener('click', guard(restart));
  $('alert-cpu').addEventListener('click', guard(() => restart({ cpu: true })));
}

/// Starts over in a fresh page, keeping the image and settings in the link.
async function restart({ cpu = false } = {}) {
  const link = new URL(app.image ? await shareLink() : location.href);
  if (cpu) link.searchParams.set('backend', 'cpu');
  location.replace(link.href);
  if (link.href.split('#')[0] === location.href.split('#')[0]) location.reload();
}

async function fillGallery() {
  const res = await fetch('www/samples/index.json');
  if (!res.ok) return;
  const { samples } = await res.json();
  $('gallery').replaceChildren(...samples.map((s) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.title = s.title;
    const img = document.createElement('img');
    img.src = `www/samples/${encodeURIComponent(s.file)}`;
    img.alt = s.title;
    b.append(img);
    b.addEventListener('click', () => setImageUrl(img.src).catch(fail));
    return b;
  }));
}

// ---------------------------------------------------------------- the JS API for tests and scripts

function whenSettled() {
  const s = document.body.dataset.state;
  if (s === 'done' || s === 'error' || s === 'ready') return Promise.resolve(s);
  if (!app.settled) {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    app.settled = { promise, resolve };
  }
  return app.settled.promise;
}

function currentMap() {
  if (!app.result || app.result.partial) return null;
  const map = app.wasm.resizeMap(app.result.map, app.result.size, 224);
  return { map, size: 224, class: app.result.class, name: app.result.name, probability: app.result.probability, top5: app.top5 };
}

function toBlob(bytes) {
  return bytes instanceof Blob ? bytes : new Blob([bytes]);
}

function exposeApi() {
  window.scorecam = {
    /** Loads an image from a URL (CORS) and explains it; resolves with getMap(). */
    loadImageFromUrl: async (url) => (await setImageUrl(url), currentMap()),
    /** Loads an image from bytes (ArrayBuffer, Uint8Array or Blob) and explains it. */
    loadImageFromBytes: async (bytes) => (await setImageBlob(toBlob(bytes), { kind: 'bytes' }), currentMap()),
    /** Explains another class of the current image. */
    setClass: async (index) => (await explainClass(index), currentMap()),
    /** Switches the model (by manifest name) and re-explains the current image. */
    selectModel: async (name) => (await selectModel(name), currentMap()),
    /** The finished map at 224x224 (Float32Array, values in [0, 1]), its class and the top-5. */
    getMap: currentMap,
    whenSettled,
    shareLink,
    state: () => document.body.dataset.state,
    backend: () => app.backend,
    models: () => app.models.map((m) => m.name),
    timings: () => structuredClone(app.timings),
    /** Destroys the GPU device, as a driver reset would (tests the recovery path). */
    loseDeviceForTesting: () => (gpu.device ? (gpu.device.destroy(), true) : false),
  };
}

// ---------------------------------------------------------------- start

function wasmBindings() {
  if (window.wasmBindings) return Promise.resolve(window.wasmBindings);
  return new Promise((resolve) => addEventListener('TrunkApplicationStarted', () => resolve(window.wasmBindings), { once: true }));
}

async function boot() {
  setState('loading');
  exposeApi();
  wireControls();
  syncControls();
  if ('serviceWorker' in navigator && location.protocol !== 'file:') {
    navigator.serviceWorker.register('sw.js').catch((e) => console.warn('no offline shell:', e));
  }
  const params = new URLSearchParams(location.search);
  let shared = null;
  let linkError = null;
  try {
    shared = parseShareFragment(location.hash);
  } catch (err) {
    linkError = err;
  }
  const t0 = performance.now();
  app.wasm = await wasmBindings();
  app.timings.wasmMs = performance.now() - t0;
  drawLegend();
  const preference = params.get('backend') === 'cpu' ? 'cpu' : 'auto';
  app.backend = await app.wasm.initBackend(preference);
  $('backend-badge').textContent = app.backend.backend === 'webgpu' ? `GPU: ${app.backend.adapter}` : 'CPU (no WebGPU)';
  $('backend-badge').dataset.backend = app.backend.backend;
  if (app.backend.notice) showNotice(app.backend.notice);
  fillGallery().catch((e) => console.warn('gallery:', e));
  app.models = await loadModelList();
  fillModelPicker();
  if (shared) applySharedView(shared);
  const wanted = params.get('model') ?? shared?.model;
  const entry = (wanted && app.models.find((m) => m.name === wanted)) || defaultModel(app.models);
  if (wanted && entry.name !== wanted) showNotice(`The model “${wanted}” is not installed here; using ${entry.name}.`);
  const imageFollows = Boolean(shared?.img || shared?.src || params.get('image'));
  await selectModel(entry.name, { settle: !imageFollows && !linkError });
  if (linkError) throw linkError; // after the model loaded: the page stays usable
  if (shared && (shared.img || shared.src)) await openShared(shared);
  else if (params.get('image')) await setImageUrl(params.get('image'));
  else if (document.body.dataset.state !== 'error') setState('ready');
}

boot().catch(fail);
