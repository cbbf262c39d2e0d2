// The wasm core: starting it, one call at a time, and what the page says when something fails.

import { $ } from './dom.js';
import { get, set, newRun } from './store.js';
import { PooledSession } from './workers.js';

export let wasm = null; // the page's own instance (trunk puts its exports on window.wasmBindings): registries, drawing
export let session = null; // the core's Session in workers (www/workers.js): backend, model, image

// A lost GPU device (a driver reset, a GPU process crash, device.destroy() in the tests) is
// announced by the worker that holds it.
const gpu = { lost: null };
function onWorkerEvent(e) {
  if (e.event !== 'device-lost') return;
  gpu.lost = e.reason;
  newRun(); // whatever runs is void
  fail(new Error('device lost'));
}

/// Destroys the GPU device, as a driver reset would; false without one.
export async function loseDeviceForTesting() {
  return session ? session.call('loseDevice', []) : false;
}

// ---------------------------------------------------------------- start

/// The wasm module's exports once trunk's loader is done. www/initializer.js records a failed
/// start in window.scorecamStartError and fires this event; it may have fired before this runs.
function bindings() {
  return new Promise((resolve, reject) => {
    const settle = () => {
      if ('scorecamStartError' in window) reject(startError(window.scorecamStartError));
      else if (window.wasmBindings) resolve(window.wasmBindings);
    };
    settle();
    addEventListener('scorecam-start-failed', settle, { once: true });
    addEventListener('TrunkApplicationStarted', settle, { once: true });
  });
}

function startError(err) {
  // www/wasmbuild.js found the browser lacking what both builds need, and loaded neither.
  if (err?.unsupported) return new Error(`This browser cannot run the app: it does not run ${err.unsupported}. Chrome or Edge 91, Firefox 114, Safari 16.4 or later do.`);
  const reason = String(err?.message ?? err).replace(/\.$/, '');
  return new Error(`The app's WebAssembly core could not start: ${reason}. Try reloading; if it persists, your browser may be too old (WebAssembly with reference types is needed).`);
}

/// Loads the module and starts a session in a worker ('auto': WebGPU, else the CPU with a notice;
/// 'cpu'). The page's thread instantiates the module too (trunk's loader, for the registries and
/// drawing); the workers get the same compiled module, so nothing is downloaded or compiled twice.
/// The badge says where the network runs, or that the start failed. Returns the module's load
/// time and which build was loaded (`wasmBuild()`).
export async function start(preference, { workers = null } = {}) {
  const badge = $('backend-badge');
  const t0 = performance.now();
  try {
    wasm = await bindings();
    const wasmMs = performance.now() - t0;
    const module = wasm.compiledModule?.();
    if (!(module instanceof WebAssembly.Module)) throw startError(new Error('the compiled module is not available to hand to a worker'));
    const glueUrl = document.querySelector('link[rel="modulepreload"][href*="scorecam"]')?.href ?? new URL('scorecam.js', document.baseURI).href;
    session = await PooledSession.start({ glueUrl, module, preference, workers, onEvent: onWorkerEvent });
    const backend = session.backend();
    badge.textContent = backend.name === 'webgpu' ? `GPU: ${backend.adapter}` : 'CPU (no WebGPU)';
    badge.dataset.backend = backend.name;
    if (backend.notice) showNotice(backend.notice);
    return { wasmMs, wasmBuild: wasmBuild() };
  } catch (err) {
    badge.textContent = 'failed';
    throw err;
  }
}

/// The wasm build the page runs (www/wasmbuild.js chose it, or fell back to SIMD128):
/// 'relaxed-simd' or 'simd128'.
function wasmBuild() {
  return window.scorecamWasmFile === 'scorecam_relaxed_bg.wasm' ? 'relaxed-simd' : 'simd128';
}

/// Wasm calls run one after another (a new call waits for a cancelled run to stop), so the
/// core's current model and image always belong together.
let chain = Promise.resolve();
export function serial(fn) {
  const p = chain.then(fn);
  chain = p.catch(() => {});
  return p;
}

// ---------------------------------------------------------------- errors and notices

export function describe(err) {
  if (err instanceof WebAssembly.RuntimeError) {
    const panic = err.panic ?? wasm?.lastPanic?.();
    return `Internal error in the wasm core${panic ? `: ${panic}` : ''}. Restart the page to continue.`;
  }
  return err?.message ? String(err.message) : String(err);
}

export function isAbort(err) {
  return err?.name === 'AbortError';
}

function showError(message, { restart = false, cpu = false } = {}) {
  $('alert-text').textContent = message;
  $('alert-restart').hidden = !restart;
  $('alert-cpu').hidden = !cpu;
  $('alert').hidden = false;
  set({ page: 'error' });
  return message;
}

export function clearError() {
  $('alert').hidden = true;
  $('alert-text').textContent = '';
}

export function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

/// Adds `text` to the notice line (a second thing to know: the backend's notice stays).
export function addNotice(text) {
  const shown = $('notice').hidden ? '' : $('notice').textContent;
  if (!shown.includes(text)) showNotice(shown ? `${shown} ${text}` : text);
}

export function hasNotice() {
  return !$('notice').hidden;
}

/// Shows an error (a cancelled run is not one) and returns the message shown. A lost device or a
/// panic leave the module unusable, so those offer a restart; anything else is a message and the
/// page goes on.
export function fail(err) {
  if (isAbort(err)) return null;
  console.error(err);
  if (gpu.lost) {
    return showError(`The GPU device was lost (${gpu.lost}). Restart to carry on; your image and settings are kept.`, { restart: true, cpu: true });
  }
  return showError(describe(err), { restart: err instanceof WebAssembly.RuntimeError });
}

/// Runs an action of the user or of the window.scorecam API: a failure is shown (message, state
/// `error`) and rethrown with the message shown, so both paths end the same way.
export async function act(fn) {
  try {
    return await fn();
  } catch (err) {
    const shown = fail(err);
    throw shown === null || shown === err?.message ? err : new Error(shown, { cause: err });
  }
}

/// An event handler running `fn` through act(); the failure is on the page, nobody awaits it.
export function guard(fn) {
  return (...args) => {
    act(() => fn(...args)).catch(() => {});
  };
}

export function init() {
  $('alert-close').addEventListener('click', () => {
    clearError();
    const { result } = get();
    set({ page: result && !result.partial ? 'done' : 'ready' });
  });
}
