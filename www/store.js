// The page's shared state, in one place. Modules read it with get() and change it with
// set(patch) (never by writing into get()'s object); views subscribe and redraw from it.
// `page` is mirrored to document.body.dataset.state, which tests and scripts watch.

const state = {
  page: 'loading', // loading, ready, explaining, done, error
  backend: null, // session.backend(): {name, adapter, binding_limit, notice}
  methods: [], // the core's registry, in-browser methods only
  colormaps: [], // the core's colormaps
  models: [], // entries of www/models/index.json
  model: null, // {entry, info}: the loaded model
  image: null, // {canvas (at most 1024 px), width, height, blob (the file), source: {kind: 'bytes'} | {kind: 'url', url}}
  top5: [], // [{class, name, probability}] of the current image
  classIndex: null, // the class asked for (null: the top one)
  result: null, // the finished explanation, or {partial: true, map, size} while it runs
  progress: null, // {done, total} of the running explanation
  options: { method: 'scorecam', topK: null },
  view: { layout: 'overlay', cmap: 'jet', opacity: 0.5 },
  // The teaching views (www/teach.js): the open tab (null: none) and each view's position.
  // channel: the step by step view's channel; sort: 'score' | 'contribution' | 'channel';
  // n: the build-up's channel count (null: all); curve: 'deletion' | 'insertion'; t: the curve
  // scrubber's step; stage: the sanity stepper's stage; sanityMethod: its method (null: see
  // views/sanity.js); compareSort: the compare view's column (views/compare.js, SORTS);
  // compareCurves: its curves' points, 'quick' (57) or 'full' (scorecam eval's 225; CURVES).
  teach: { tab: null, channel: null, sort: 'score', n: null, curve: 'deletion', t: 0, stage: 0, sanityMethod: null, compareSort: 'method', compareCurves: 'quick' },
  hidden: [], // control groups a lesson link hides: 'input', 'classes', 'options', 'tabs'
  timings: {},
};

const SETTLED = ['ready', 'done', 'error'];
const listeners = new Set();
let settled = null; // {promise, resolve} while someone waits for the page to settle
let run = 0;

export function get() {
  return state;
}

/// Merges `patch` into the state and tells every subscriber `fn(state, patch)`.
export function set(patch) {
  Object.assign(state, patch);
  for (const fn of listeners) fn(state, patch);
  if ('page' in patch) {
    document.body.dataset.state = patch.page;
    if (SETTLED.includes(patch.page) && settled) {
      settled.resolve(patch.page);
      settled = null;
    }
  }
}

export function subscribe(fn) {
  listeners.add(fn);
}

/// Resolves with the page state once it is ready, done or error.
export function whenSettled() {
  if (SETTLED.includes(state.page)) return Promise.resolve(state.page);
  if (!settled) {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    settled = { promise, resolve };
  }
  return settled.promise;
}

/// Every new image, class, option or model starts a run: an older run cancels at its next
/// progress callback, and its result is dropped (a stale result never overwrites a newer one).
export function newRun() {
  run += 1;
  return run;
}

export function isCurrent(r) {
  return r === run;
}
