// One wasm core in a dedicated worker, so the page's own thread never computes: not while a
// model is built, not during an explanation. The page (www/workers.js) sends calls as messages
// `{id, call, args}` and gets `{id, value}` or `{id, error}` back; an explanation's progress
// comes as `{id, progress}` and the page cancels it with `{cancel: id}`, which the worker sees
// between batches (the core yields to this worker's event loop after each). A lost GPU device is
// announced with `{event: 'device-lost', reason}`.
//
// The module is compiled once, by trunk's loader in the page, and handed over on `init`: no
// second download, no second compile.

let bindings = null; // the module's exports
let memory = null; // the instance's wasm memory (it only grows: its size is the peak so far)
let session = null; // the core's Session: backend, model, image
let device = null; // the GPUDevice wgpu asked for, for loseDevice()
const cancelled = new Set();

/// Wraps GPUAdapter.requestDevice to learn when wgpu's device is lost (a driver reset, a GPU
/// process crash, or loseDevice() in the tests); must run before the session starts.
function watchGpuDevice() {
  if (!globalThis.GPUAdapter?.prototype.requestDevice) return;
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const d = await request.apply(this, args);
    device = d;
    d.lost.then((info) => {
      const reason = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
      self.postMessage({ event: 'device-lost', reason });
    });
    return d;
  };
}

const calls = {
  /// Instantiates the module the page compiled and starts a session ('auto' or 'cpu').
  async init(glueUrl, module, preference) {
    watchGpuDevice();
    bindings = await import(glueUrl);
    memory = (await bindings.default({ module_or_path: module })).memory;
    session = await bindings.Session.start(preference);
    return session.backend();
  },
  loadModel: (manifest, bytes, layer) => session.loadModel(manifest, bytes, layer ?? null),
  /// A model the visitor brings, imported into the app's form (www/ownmodel.js runs this in a
  /// worker of its own, then ends it).
  importModel(bytes, file, options) {
    const out = bindings.importModel(bytes, file, options);
    return { ...out, peakBytes: memory?.buffer.byteLength ?? null };
  },
  chooseConvKernels: (cached, batch) => session.chooseConvKernels(cached, batch),
  model: () => session.model(),
  setImage: (rgba, width, height) => session.setImage(rgba, width, height),
  explain(request, id) {
    return session.explain(request, (progress) => {
      if (cancelled.has(id)) return false;
      self.postMessage({ id, progress }, progress.map ? [progress.map.buffer] : []);
      return true;
    });
  },
  scoringPlan: (request) => session.scoringPlan(request),
  scoreBatch: (request, batch) => session.scoreBatch(request, batch),
  partialMap: (request, scores) => session.partialMap(request, scores),
  finishScores: (request, scores) => session.finishScores(request, scores),
  // The teaching views (www/teach.js).
  activations: () => session.activations(),
  channelView: (request, channel) => session.channelView(request, channel),
  curveLength: () => session.curveLength(),
  curvePoints: (request, map, kind, from, to) => session.curvePoints(request, map, kind, from, to),
  dropIncrease: (request, map, protocol) => session.dropIncrease(request, map, protocol),
  randomised(request, weights, stage, seed, id) {
    return session.randomised(request, weights, stage, seed, progressOf(id));
  },
  // The compare view (www/views/compare.js): one method, then its metrics (with the curves other
  // workers scored), and a method's passes.
  compareMethod(request, curveStep, id) {
    return session.compareMethod(request, curveStep, progressOf(id));
  },
  compareMetrics(known, id) {
    return session.compareMetrics(known, progressOf(id));
  },
  passes: (request) => session.passes(request),
  validationErrors: () => bindings.validationErrors(),
  loseDevice() {
    if (!device) return false;
    device.destroy();
    return true;
  },
};

/// The progress callback of call `id`: posts `{done, total}`, and cancels once the page asked.
function progressOf(id) {
  return (progress) => {
    if (cancelled.has(id)) return false;
    self.postMessage({ id, progress });
    return true;
  };
}

/// Typed arrays in a result travel without a copy.
function transferables(value) {
  if (!value || typeof value !== 'object') return [];
  return Object.values(value).filter(ArrayBuffer.isView).map((v) => v.buffer);
}

self.onmessage = async ({ data }) => {
  if ('cancel' in data) {
    cancelled.add(data.cancel);
    return;
  }
  const { id, call, args } = data;
  try {
    if (!(call in calls)) throw new Error(`unknown call ${call}`);
    if (call !== 'init' && !session) throw new Error('the core has not started');
    const value = await calls[call](...args, id);
    self.postMessage({ id, value }, transferables(value));
  } catch (err) {
    const runtime = err instanceof WebAssembly.RuntimeError;
    self.postMessage({
      id,
      error: { name: err?.name ?? 'Error', message: String(err?.message ?? err), runtime, panic: runtime ? (bindings?.lastPanic?.() ?? null) : null },
    });
  } finally {
    cancelled.delete(id);
  }
};
