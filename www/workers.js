// The wasm core in workers: one lead worker holds the session the page talks to, and on the CPU
// backend a pool of helpers, each with its own wasm instance, model copy and image, scores
// Score-CAM's masked batches beside it. The page's thread only sends messages and draws.
//
// The pool (docs/web.md, "Workers"): the lead plans the explanation's batches (`scoringPlan`),
// every worker takes the next unscored batch until none is left, and the lead turns the scores
// into the map (`finishScores`). A batch holds the same channels whichever worker scores it, so
// the map equals one worker's. Other methods, and everything on WebGPU, run on the lead alone.
// No SharedArrayBuffer: any static host works, no cross-origin isolation needed.

import { cachedProbes, cacheProbe, clearProbes } from './probecache.js';

/// A worker running www/worker.js, called like the core: `call(name, args)` resolves to the
/// value or rejects with the core's error (a panic as a WebAssembly.RuntimeError).
export class CoreWorker {
  constructor(onEvent = () => {}) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map(); // id -> {resolve, reject, onProgress}
    this.nextId = 1;
    this.dead = null; // why it stopped, once it has
    this.worker.onmessage = ({ data }) => {
      if (data.event) return onEvent(data);
      const p = this.pending.get(data.id);
      if (!p) return;
      if ('progress' in data) {
        if (p.onProgress(data.progress) === false) this.worker.postMessage({ cancel: data.id });
        return;
      }
      this.pending.delete(data.id);
      if (data.error) p.reject(coreError(data.error));
      else p.resolve(withChannelRecords(data.value));
    };
    const die = (why) => {
      this.dead ??= why;
      for (const p of this.pending.values()) p.reject(new Error(`The worker running the core stopped (${this.dead}).`));
      this.pending.clear();
    };
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      die(e.message || 'it failed to load or ran out of memory');
    };
    this.worker.onmessageerror = () => die('a message could not be read');
    this.die = die;
  }

  /// `transfer`: buffers of `args` handed over rather than copied (the caller must not use them
  /// again).
  call(name, args = [], { onProgress = null, transfer = [] } = {}) {
    if (this.dead) return Promise.reject(new Error(`The worker running the core stopped (${this.dead}).`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, call: name, args }, transfer);
    });
  }

  terminate(why = 'terminated') {
    this.worker.terminate();
    this.die(why);
  }
}

/// The Score-CAM batch the kernels are timed at: the method's default (the core caps it by the
/// device's binding limit, as it caps the explanation's).
const PROBE_BATCH = 16;

/// An explanation's per-channel columns (src/web.rs, `explanation_to_js`) as the records
/// `scorecam explain --json` prints: `channels: [{channel, constant, score, weight}]` (score null
/// where nothing was scored).
export function withChannelRecords(value) {
  if (!(value?.channel_scores instanceof Float32Array)) return value;
  const { channel_scores: scores, channel_weights: weights, channel_constant: constant } = value;
  value.channels = Array.from(scores, (s, k) => ({ channel: k, constant: constant[k] === 1, score: Number.isNaN(s) ? null : s, weight: weights[k] }));
  return value;
}

function coreError({ name, message, runtime, panic }) {
  const err = runtime ? new WebAssembly.RuntimeError(message) : new Error(message);
  if (name && !runtime) err.name = name;
  if (panic) err.panic = panic;
  return err;
}

/// How many workers score on the CPU backend: one per core the browser reports, while a model
/// copy per worker fits in a quarter of the device's memory (navigator.deviceMemory, where the
/// browser tells it; else 4 GiB assumed), at most 8. `weightBytes`: the bytes a worker holds the
/// model's weights in (ModelInfo.weight_bytes_on_device: f32 convolutions, int8 linear layers);
/// the weight file's bytes while it loads, activations, the zero image's forward (kept to copy
/// the rows a mask leaves at zero: VGG16's 54 MB) and the wasm heap's slack are counted as as
/// much again plus 64 MiB, which is what a worker's wasm memory measured after a Score-CAM
/// (docs/web.md). EfficientNet-Lite0 (15 MB) gets every core; VGG16 (183 MB) gets 2 workers on
/// 4 GiB, 4 on 8 GiB.
export function poolSize({ cores = globalThis.navigator?.hardwareConcurrency, memoryGiB = globalThis.navigator?.deviceMemory, weightBytes }) {
  const perCopy = weightBytes * 2 + 64 * 2 ** 20;
  const budget = ((memoryGiB || 4) * 2 ** 30) / 4;
  return Math.max(1, Math.min(cores || 1, 8, Math.floor(budget / perCopy)));
}

/// The page's session: the lead worker, plus the pool on the CPU backend. Calls mirror the core's
/// Session (src/web.rs); backend() and model() answer from what the last calls returned.
export class PooledSession {
  /// Starts the lead worker's session on the compiled `module` (glue: the URL of trunk's JS).
  /// `workers`: the CPU pool's size, overriding poolSize() (the page's ?workers=N).
  static async start({ glueUrl, module, preference, onEvent, workers = null }) {
    const lead = new CoreWorker(onEvent);
    try {
      const backend = await lead.call('init', [glueUrl, module, preference]);
      return new PooledSession({ lead, backend, glueUrl, module, workers });
    } catch (err) {
      lead.terminate('its start failed');
      throw err;
    }
  }

  constructor({ lead, backend, glueUrl, module, workers }) {
    Object.assign(this, { lead, glueUrl, module, workers });
    this.info = { backend, model: null };
    this.helpers = []; // {worker, model, image, ready}
    this.current = { model: null, image: null }; // what every worker must hold: {version, args}
    this.versions = 0;
    this.size = 1; // the pool's size for the current model (lead included)
    this.stats = { helpersLost: 0, lastRun: null }; // lastRun: batches each worker scored, lead first
  }

  backend() {
    return this.info.backend;
  }

  model() {
    return this.info.model;
  }

  call(name, args, options) {
    return this.lead.call(name, args, options);
  }

  /// Loads a model (`layer`: the one to explain, for an imported graph; null: the manifest's) in
  /// the lead, and in the helpers beside it.
  async loadModel(manifest, bytes, layer = null) {
    try {
      this.info.model = await this.lead.call('loadModel', [manifest, bytes, layer]);
      // On WebGPU each layer shape's kernel is timed once per adapter and cached (www/probecache.js).
      const choose = async (cached) => this.lead.call('chooseConvKernels', [cached, PROBE_BATCH]);
      // A cache the core cannot read (another version's format) is dropped, not a failed load.
      const chosen = await choose(JSON.stringify(await cachedProbes())).catch(async (err) => {
        if (!/cached probes/.test(err.message)) throw err;
        await clearProbes();
        return choose(null);
      });
      if (chosen.probe && !chosen.from_cache) await cacheProbe(chosen.probe);
      this.info.model = chosen.model;
      this.info.convProbe = chosen.probe ? { fromCache: chosen.from_cache, layers: chosen.probe.layers } : null;
    } catch (err) {
      this.info.model = await this.lead.call('model').catch(() => null); // kept, or gone
      throw err;
    }
    this.current = { model: { version: ++this.versions, args: [manifest, bytes, layer] }, image: null };
    this.resize();
    return this.info.model;
  }

  async setImage(rgba, width, height) {
    const copy = rgba.slice(); // the helpers' copy, whatever the caller does with `rgba`
    const summary = await this.lead.call('setImage', [rgba, width, height]);
    this.current.image = { version: ++this.versions, args: [copy, width, height] };
    for (const h of this.helpers) this.sync(h).catch(() => {}); // forwarded beside the lead's work
    return summary;
  }

  /// Sizes the pool for the current model: helpers start (and load it) in the background.
  resize() {
    const { backend, model } = this.info;
    if (backend.name !== 'cpu' || !model) this.size = 1;
    else this.size = this.workers ? Math.min(Math.max(1, this.workers), 16) : poolSize({ weightBytes: model.weight_bytes_on_device });
    while (this.helpers.length > this.size - 1) this.helpers.pop().worker.terminate('the pool shrank');
    while (this.helpers.length < this.size - 1) this.helpers.push(this.newHelper());
    for (const h of this.helpers) this.sync(h).catch(() => {});
  }

  newHelper() {
    const worker = new CoreWorker();
    const h = { worker, model: null, image: null, ready: null };
    h.started = worker.call('init', [this.glueUrl, this.module, 'cpu']);
    return h;
  }

  /// Brings helper `h` to the current model and image; resolves to whether it holds them.
  sync(h) {
    const run = async () => {
      await h.started;
      const { model, image } = this.current;
      if (model && h.model !== model.version) {
        h.image = null;
        await h.worker.call('loadModel', model.args);
        h.model = model.version;
      }
      if (image && h.image !== image.version) {
        const [rgba, width, height] = image.args;
        await h.worker.call('setImage', [rgba, width, height]);
        h.image = image.version;
      }
      return h.model === (this.current.model?.version ?? null) && h.image === (this.current.image?.version ?? null);
    };
    h.ready = (h.ready ?? Promise.resolve()).catch(() => {}).then(run);
    return h.ready;
  }

  /// A helper that failed is replaced by a fresh one (in the background) and never used again in
  /// this run: its batch goes back in the queue.
  replace(h, err) {
    console.warn('A pool worker failed and is replaced:', err);
    this.stats.helpersLost++;
    h.worker.terminate('replaced');
    const i = this.helpers.indexOf(h);
    if (i >= 0) {
      this.helpers[i] = this.newHelper();
      this.sync(this.helpers[i]).catch(() => {});
    }
  }

  /// Explains the current image, as the core's explain does: `onProgress({done, total, map})`
  /// after every batch; returning false cancels (rejects with an AbortError once every worker
  /// has stopped).
  async explain(request, onProgress) {
    const plan = this.size > 1 ? await this.lead.call('scoringPlan', [request]) : null;
    if (!plan) return this.lead.call('explain', [request], { onProgress });
    return this.explainPooled(request, plan, onProgress);
  }

  async explainPooled(request, plan, onProgress) {
    const scores = new Float32Array(plan.channels).fill(NaN);
    const queue = Array.from({ length: plan.batches }, (_, b) => b);
    let done = 0;
    let stop = null; // why the run ends early: 'cancelled' or an error
    let drawing = null; // the partial map being made (one at a time)
    let stale = false; // scores came in while it was made
    // The worker that returned a batch last makes the partial map: it is between batches, so it
    // answers at once (every worker holds the same image and can).
    let idle = this.lead;
    const progress = (map) => {
      if (stop) return;
      if (onProgress({ done, total: plan.total, map }) === false) stop ??= 'cancelled';
    };
    const draw = () => {
      if (drawing) {
        stale = true;
        return;
      }
      drawing = idle.call('partialMap', [request, scores.slice()])
        .then((map) => progress(map), () => progress(null))
        .finally(() => {
          drawing = null;
          if (stale && !stop) {
            stale = false;
            draw();
          }
        });
    };
    const scored = new Map(); // worker -> batches
    // Each worker has two batches in flight: it starts the next as soon as it returns one, not
    // after the page's thread (busy drawing, at times) has read the result and answered. The
    // second starts once the first batch is back, so every worker gets one before any gets two.
    const score = async (worker, onFail) => {
      let failed = false;
      let fed;
      const firstBack = new Promise((resolve) => {
        fed = resolve;
      });
      const lane = async () => {
        while (queue.length && !stop && !failed) {
          const b = queue.shift();
          let r;
          try {
            r = await worker.call('scoreBatch', [request, b]);
          } catch (err) {
            queue.unshift(b);
            if (!failed) {
              failed = true; // once per worker: the other lane's call failed the same way
              if (!onFail(err)) stop ??= err;
            }
            break;
          }
          r.channels.forEach((k, i) => {
            scores[k] = r.scores[i];
          });
          done += r.channels.length;
          scored.set(worker, (scored.get(worker) ?? 0) + 1);
          idle = worker;
          draw();
          fed();
        }
        fed();
      };
      await Promise.all([lane(), firstBack.then(lane)]);
    };
    await this.onEveryWorker(score);
    // A helper that failed on the last batches handed them back after the lead had finished.
    while (queue.length && !stop) await score(this.lead, () => false);
    await drawing;
    this.stats.lastRun = [this.lead, ...this.helpers.map((h) => h.worker)].map((w) => scored.get(w) ?? 0);
    if (stop === 'cancelled') throw Object.assign(new Error('cancelled'), { name: 'AbortError' });
    if (stop) throw stop;
    return this.lead.call('finishScores', [request, scores]);
  }

  /// Runs `work(worker, onFail)` on the lead and on every helper that holds the current model and
  /// image, and resolves when all have returned. `onFail(err)` tells a worker whether the run
  /// carries on without it: a helper that crashed is replaced (in the background) and the lead
  /// and the other helpers carry on; any other error is the run's.
  async onEveryWorker(work) {
    const helperRuns = this.helpers.map(async (h) => {
      try {
        if (!(await this.sync(h))) return;
      } catch (err) {
        this.replace(h, err);
        return;
      }
      await work(h.worker, (err) => {
        if (err instanceof WebAssembly.RuntimeError || h.worker.dead) {
          this.replace(h, err);
          return true;
        }
        return false;
      });
    });
    await Promise.all([work(this.lead, () => false), ...helperRuns]);
  }

  /// Runs independent core calls `tasks` ([name, args] each) on every worker holding the current
  /// model and image (the lead alone off the CPU): each worker takes the next task until none is
  /// left; `onResult(i, value)` as each finishes, in any order. `shouldStop()` is asked between
  /// tasks; a stop rejects with an AbortError. A helper that fails is replaced and its task retried.
  async spread(tasks, onResult, shouldStop = () => false) {
    const queue = tasks.map((t, i) => i);
    let failure = null;
    const work = async (worker, onFail) => {
      while (queue.length && !failure && !shouldStop()) {
        const i = queue.shift();
        let value;
        try {
          value = await worker.call(tasks[i][0], tasks[i][1]);
        } catch (err) {
          queue.unshift(i);
          if (!onFail(err)) failure ??= err;
          return;
        }
        onResult(i, value);
      }
    };
    await this.onEveryWorker(work);
    while (queue.length && !failure && !shouldStop()) await work(this.lead, () => false);
    if (failure) throw failure;
    if (queue.length) throw Object.assign(new Error('cancelled'), { name: 'AbortError' });
  }

  /// The current model's manifest and int8 file, as loaded (the sanity stepper rebuilds it).
  modelFile() {
    return this.current.model?.args.slice(0, 2) ?? null;
  }

  /// The pool as tests and benchmarks see it: `{size, ready, lost, lastRun}` (ready: helpers
  /// holding the current model and image; lastRun: batches each worker scored in the last pooled
  /// run, the lead first).
  async pool() {
    const ready = await Promise.all(this.helpers.map((h) => (h.ready ?? Promise.resolve(false)).catch(() => false)));
    return { size: this.size, ready: ready.filter(Boolean).length, lost: this.stats.helpersLost, lastRun: this.stats.lastRun };
  }

  /// Terminates helper `i`, as a crash would (tests the replacement path); false without one.
  killHelperForTesting(i) {
    const h = this.helpers[i];
    if (!h) return false;
    h.worker.terminate('killed by a test');
    return true;
  }
}
