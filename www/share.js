// Share links: the URL fragment holds the view state and the image (a small JPEG, base64url) or
// the image's URL. Everything read from a fragment is validated against a closed set of keys,
// patterns, the core's own method and colormap names, and sizes; a bad link is an Error with a
// message for the user, never partial state.

import { $ } from './dom.js';
import { get, set } from './store.js';
import { guard } from './core.js';
import { methodHas } from './explain.js';
import { setImageBlob, setLinkedImageUrl, ImageDecodeError } from './inputs.js';

export const LIMITS = {
  fragmentChars: 256 * 1024,
  shareImageBytes: 40 * 1024, // what we write (about 30 KB typical)
  sharedImageBytes: 160 * 1024, // what we accept from a link
};

const SHARE_SIDE = 320; // the shared JPEG's longest side

// Links written before `method` named Score-CAM's variant (or a Grad-CAM) as `variant`.
const VARIANTS = { official: 'scorecam', 'gradcam-lib': 'scorecam-gradcam-lib', gradcam: 'gradcam', gradcampp: 'gradcampp' };

const PATTERNS = {
  v: /^1$/,
  model: /^[A-Za-z0-9_.-]{1,64}$/,
  class: /^\d{1,5}$/,
  method: /^[a-z0-9-]{1,64}$/,
  variant: /^(official|gradcam-lib|gradcam|gradcampp)$/,
  topk: /^\d{1,6}$/,
  opacity: /^(0(\.\d{1,4})?|1(\.0{1,4})?)$/,
  cmap: /^[a-z0-9_-]{1,32}$/,
  view: /^(overlay|side)$/,
  img: /^[A-Za-z0-9_-]+$/,
  src: /^https?:\/\/[^\s]{1,2040}$/,
  // Lessons (www/teach.js): the open view and its state, and the controls to hide.
  tab: /^(steps|gradients|faithful|sanity|camera|compare)$/,
  ch: /^\d{1,5}$/,
  sort: /^(score|contribution|channel)$/,
  n: /^\d{1,5}$/,
  curve: /^(deletion|insertion)$/,
  t: /^\d{1,5}$/,
  stage: /^\d{1,3}$/,
  sm: /^[a-z0-9-]{1,64}$/,
  csort: /^(method|deletion|insertion|drop|seconds|forwards)$/,
  ccurves: /^(quick|full)$/,
  hide: /^(input|classes|options|tabs)(,(input|classes|options|tabs)){0,3}$/,
  // The visitor's own model (www/ownmodel.js): named, never carried: its file's SHA-256 and name,
  // the layer explained and the preprocessing, so the same file gives the same model elsewhere.
  own: /^[0-9a-f]{64}$/,
  ofile: /^[A-Za-z0-9 ._()+-]{1,120}\.(onnx|pth|pt|safetensors)$/,
  layer: /^[\x21-\x7e]{1,200}$/,
  size: /^\d{1,4}$/,
  mean: /^-?\d{1,3}(\.\d{1,8})?(,-?\d{1,3}(\.\d{1,8})?){2}$/,
  std: /^\d{1,3}(\.\d{1,8})?(,\d{1,3}(\.\d{1,8})?){2}$/,
};
const OWN_FIELDS = ['ofile', 'layer', 'size', 'mean', 'std'];
const VIEW_FIELDS = ['ch', 'sort', 'n', 'curve', 't', 'stage', 'sm', 'csort', 'ccurves'];

export class ShareLinkError extends Error {}

function bad(message) {
  return new ShareLinkError(`This shared link is malformed: ${message}. Drop an image to start afresh.`);
}

/// The notice for a link (`?model=`, a share link's `model`) naming a model not installed here,
/// `using` the one loaded instead. The link's text is shown back only when it can be nothing but a
/// model's name (letters, digits, `_`, `.`, `-`, at most 64): a sentence in a link must not
/// become the page's own words.
export function missingModelNotice(wanted, using) {
  const named = /^[\w.-]{1,64}$/.test(wanted) ? `“${wanted}”` : 'this link names';
  return `The model ${named} is not installed here; using ${using}.`;
}

/// The state in `hash` (`#v=1&model=…`), or null for an empty fragment. `methods` and
/// `colormaps` are the names this page offers. Throws ShareLinkError.
export function parseShareFragment(hash, { methods, colormaps }) {
  const text = (hash ?? '').replace(/^#/, '');
  if (!text) return null;
  if (text.length > LIMITS.fragmentChars) throw bad(`it is ${(text.length / 1024).toFixed(0)} KB long (at most ${LIMITS.fragmentChars / 1024} KB)`);
  let params;
  try {
    params = new URLSearchParams(text);
  } catch {
    throw bad('it cannot be parsed');
  }
  const out = {};
  for (const key of Object.keys(PATTERNS)) {
    const all = params.getAll(key);
    if (all.length > 1) throw bad(`“${key}” appears ${all.length} times`);
    if (!all.length) continue;
    const value = all[0];
    if (!PATTERNS[key].test(value)) throw bad(`the value of “${key}” is not valid`);
    out[key] = value;
  }
  if (out.v !== '1') throw bad('it has no version (v=1)');
  if (out.img && out.src) throw bad('it holds both an image and an image address');
  if (!out.own && OWN_FIELDS.some((k) => out[k] !== undefined)) throw bad('it describes a model of your own but names none (own)');
  if (out.own && (!out.ofile || out.model)) throw bad('it names a model of your own without its file name, or with another model');
  if (out.method && out.variant) throw bad('it names both a method and a variant');
  const method = out.method ?? VARIANTS[out.variant];
  if (method !== undefined && !methods.includes(method)) throw bad('its method is not one this page offers');
  if (out.cmap !== undefined && !colormaps.includes(out.cmap)) throw bad('its colormap is not one this page offers');
  const state = { model: out.model, cmap: out.cmap, view: out.view, method, src: out.src, img: out.img };
  if (out.class !== undefined) state.class = Number(out.class);
  if (out.topk !== undefined) {
    state.topk = Number(out.topk);
    if (state.topk < 1) throw bad('topk must be at least 1');
  }
  if (out.opacity !== undefined) state.opacity = Number(out.opacity);
  if (!out.tab && VIEW_FIELDS.some((k) => out[k] !== undefined)) throw bad('it sets a teaching view’s state but names no view (tab)');
  if (out.tab) {
    state.teach = { tab: out.tab };
    if (out.ch !== undefined) state.teach.channel = Number(out.ch);
    if (out.sort !== undefined) state.teach.sort = out.sort;
    if (out.n !== undefined) state.teach.n = Number(out.n);
    if (out.curve !== undefined) state.teach.curve = out.curve;
    if (out.t !== undefined) state.teach.t = Number(out.t);
    if (out.stage !== undefined) state.teach.stage = Number(out.stage);
    if (out.sm !== undefined) {
      if (!methods.includes(out.sm)) throw bad('its sanity check method is not one this page offers');
      state.teach.sanityMethod = out.sm;
    }
    if (out.csort !== undefined) state.teach.compareSort = out.csort;
    if (out.ccurves !== undefined) state.teach.compareCurves = out.ccurves;
    if (state.teach.n === 0) throw bad('n must be at least 1');
  }
  if (out.hide) {
    const hide = out.hide.split(',');
    if (new Set(hide).size !== hide.length) throw bad('“hide” names a control twice');
    state.hide = hide;
  }
  if (out.img) {
    if (out.img.length > Math.ceil((LIMITS.sharedImageBytes * 4) / 3)) throw bad('its image is too large');
    try {
      base64UrlToBytes(out.img);
    } catch {
      throw bad('its image is not valid base64url');
    }
  }
  if (out.src) {
    try {
      const u = new URL(out.src);
      if (!['http:', 'https:'].includes(u.protocol)) throw new Error();
    } catch {
      throw bad('its image address is not an http(s) URL');
    }
  }
  if (out.own) {
    const three = (v) => v?.split(',').map(Number);
    state.own = { id: out.own, file: out.ofile, layer: out.layer, inputSize: out.size && Number(out.size), mean: three(out.mean), std: three(out.std) };
    if (state.own.std?.some((v) => !(v > 0))) throw bad('a standard deviation must be above 0');
    if (state.own.inputSize !== undefined && !(state.own.inputSize >= 8 && state.own.inputSize <= 1024)) throw bad('its input size is out of range');
    for (const k of Object.keys(state.own)) if (state.own[k] === undefined) delete state.own[k];
  }
  for (const k of Object.keys(state)) if (state[k] === undefined) delete state[k];
  return state;
}

/// `#v=1&…` for `state` (keys as parseShareFragment returns them).
export function buildShareFragment(state) {
  const p = new URLSearchParams({ v: '1' });
  for (const key of ['model', 'class', 'method', 'topk', 'opacity', 'cmap', 'view']) {
    const value = state[key];
    if (value === undefined || value === null) continue;
    p.set(key, key === 'opacity' ? Number(value).toFixed(2) : String(value));
  }
  const teach = state.teach ?? {};
  const fields = { tab: teach.tab, ch: teach.channel, sort: teach.sort, n: teach.n, curve: teach.curve, t: teach.t, stage: teach.stage, sm: teach.sanityMethod, csort: teach.compareSort, ccurves: teach.compareCurves };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== null) p.set(key, String(value));
  if (state.hide?.length) p.set('hide', state.hide.join(','));
  if (state.own) {
    const o = state.own;
    p.set('own', o.id);
    p.set('ofile', o.file);
    if (o.layer) p.set('layer', o.layer);
    if (o.inputSize) p.set('size', String(o.inputSize));
    if (o.mean) p.set('mean', o.mean.map((v) => +v.toFixed(6)).join(','));
    if (o.std) p.set('std', o.std.map((v) => +v.toFixed(6)).join(','));
  }
  for (const key of ['src', 'img']) if (state[key] !== undefined && state[key] !== null) p.set(key, String(state[key]));
  return `#${p.toString()}`;
}

export function bytesToBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// ---------------------------------------------------------------- the page's links

/// A small JPEG of the image (longest side SHARE_SIDE, quality lowered until it fits).
async function shareJpeg({ canvas, width, height }) {
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
  throw new ImageTooLargeForLink('The image does not compress small enough for a link.');
}

class ImageTooLargeForLink extends Error {}

/// The open teaching view's state, as a lesson link keeps it: only the fields of that view.
function lessonState(teach) {
  const keep = { steps: ['channel', 'sort', 'n'], gradients: ['channel'], faithful: ['curve', 't'], sanity: ['stage', 'sanityMethod'], camera: [], compare: ['compareSort', 'compareCurves'] }[teach.tab];
  if (!keep) return undefined;
  return Object.fromEntries([['tab', teach.tab], ...keep.map((k) => [k, teach[k]])]);
}

/// A link to this page that opens the current image, class, method and view; with `lesson`, the
/// open teaching view too, with the other controls hidden. `image`: 'include' (the image's
/// address, or a small JPEG of it: throws when that does not fit a link), 'if-fits' (left out
/// then) or 'none'.
export async function shareLink({ lesson = $('lesson-focus')?.checked ?? false, image: withImage = 'include' } = {}) {
  const { image, model, result, classIndex, options, view, teach } = get();
  if (!image || !model) throw new Error('Nothing to share yet.');
  const own = model.entry.own;
  const state = {
    model: own ? undefined : model.entry.name,
    own: own && { id: own.id, file: own.file, layer: own.layer, inputSize: own.inputSize, mean: own.normalisation?.mean, std: own.normalisation?.std },
    class: result && !result.partial ? result.explained.class : classIndex,
    method: options.method,
    topk: methodHas(options.method, 'top_k') ? options.topK : null,
    opacity: view.opacity,
    cmap: view.cmap,
    view: view.layout,
    teach: lessonState(teach),
    hide: lesson && teach.tab ? ['input', 'classes', 'options', 'tabs'] : get().hidden,
  };
  if (withImage === 'none') {
    // (no image in the link)
  } else if (image.source.kind === 'url') {
    state.src = image.source.url;
  } else {
    try {
      state.img = bytesToBase64Url(await shareJpeg(image));
    } catch (err) {
      if (withImage !== 'if-fits' || !(err instanceof ImageTooLargeForLink)) throw err;
    }
  }
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

/// The shared view and method options; the image itself is opened after the model loaded.
export function applySharedView(s) {
  const { view, options } = get();
  set({
    view: { layout: s.view ?? view.layout, cmap: s.cmap ?? view.cmap, opacity: s.opacity ?? view.opacity },
    options: { method: s.method ?? options.method, topK: s.topk ?? options.topK },
    teach: { ...get().teach, ...(s.teach ?? {}) },
    hidden: s.hide ?? [],
  });
}

/// Opens the shared image (if any) and explains the shared class with the loaded model.
export async function openShared(s) {
  const classes = get().model.info.class_names.length;
  if (s.class !== undefined && s.class >= classes) {
    throw new Error(`The shared link names class ${s.class}, but this model has ${classes} classes.`);
  }
  const options = { classIndex: s.class ?? null };
  if (s.img) {
    const blob = new Blob([base64UrlToBytes(s.img)], { type: 'image/jpeg' });
    await setImageBlob(blob, { kind: 'bytes', label: 'The shared link’s image' }, options).catch((err) => {
      throw err instanceof ImageDecodeError ? new Error('The shared link’s image is damaged (it does not decode as an image).') : err;
    });
  } else if (s.src) {
    await setLinkedImageUrl(s.src, options);
  }
}

let wanted = null; // while a share link waits for the visitor's model file: {take(file)}

/// The share link's own model the page waits for, if any.
export function wantedOwnModel() {
  return wanted;
}

/// A link that names a model of its author's own (`s.own`) that this browser does not keep: the
/// page says which file it needs and waits for it (dropped or picked), checks its SHA-256,
/// brings it in with the link's layer and preprocessing, then opens the link's image.
export function askForOwnModel(s, addOwnModel) {
  const { id, file } = s.own;
  const note = $('own-wanted');
  note.textContent = `This link explains its image with a model of your own, “${file}” (SHA-256 ${id.slice(0, 16)}…). Drop that file here, or choose it with “Your model…”: it is checked and stays on this computer.`;
  note.hidden = false;
  wanted = {
    async take(blob) {
      await addOwnModel(blob, { interactive: false, expect: id, choices: { layer: s.own.layer, inputSize: s.own.inputSize, mean: s.own.mean, std: s.own.std, name: file.replace(/\.(onnx|pth|pt|safetensors)$/i, '') } });
      wanted = null;
      note.hidden = true;
      await openShared(s);
    },
  };
}

// A restart (after a lost GPU device or a panic) keeps the image itself, not the link's small
// JPEG: its file goes into Cache Storage and this tab's sessionStorage says so; the fresh page
// takes it once (takeRestartImage) and deletes it.
const RESTART_CACHE = 'scorecam-restart';
const RESTART_KEY = 'scorecam-restart'; // sessionStorage: {source} of the image kept
const RESTART_ENTRY = 'restart-image';

/// Keeps `image`'s file (a camera frame: its PNG) for the page after a restart; false where
/// storage refuses it (quota, storage blocked).
async function keepForRestart(image) {
  try {
    const blob = image.blob ?? (await new Promise((ok) => image.canvas.toBlob(ok, 'image/png')));
    if (!blob) return false;
    const cache = await caches.open(RESTART_CACHE);
    await cache.put(RESTART_ENTRY, new Response(blob));
    sessionStorage.setItem(RESTART_KEY, JSON.stringify({ source: image.source?.kind === 'url' ? image.source : { kind: 'bytes' } }));
    return true;
  } catch (err) {
    console.warn('restart: the image could not be kept', err);
    return false;
  }
}

/// The image a restart kept, once: {blob, source}, or null.
export async function takeRestartImage() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(RESTART_KEY));
    sessionStorage.removeItem(RESTART_KEY);
  } catch {
    return null; // (storage blocked)
  }
  if (!saved || !('caches' in self)) return null;
  try {
    const res = await (await caches.open(RESTART_CACHE)).match(RESTART_ENTRY);
    await caches.delete(RESTART_CACHE);
    if (!res) return null;
    const source = saved.source?.kind === 'url' && typeof saved.source.url === 'string' ? { kind: 'url', url: saved.source.url } : { kind: 'bytes' };
    return { blob: await res.blob(), source };
  } catch {
    return null;
  }
}

/// Starts over in a fresh page: the settings in the link, the image kept in this browser
/// (keepForRestart), or in the link where it cannot be (and fits), else left out.
async function restart({ cpu = false } = {}) {
  const { image, model } = get();
  const keep = image && model ? ((await keepForRestart(image)) ? 'none' : 'if-fits') : null;
  const link = new URL(keep ? await shareLink({ image: keep }) : location.href);
  if (cpu) link.searchParams.set('backend', 'cpu');
  location.replace(link.href);
  if (link.href.split('#')[0] === location.href.split('#')[0]) location.reload();
}

export function init() {
  $('copy-link').addEventListener('click', guard(copyLink));
  $('alert-restart').addEventListener('click', guard(() => restart()));
  $('alert-cpu').addEventListener('click', guard(() => restart({ cpu: true })));
}
