// The page's start: wires the modules, starts the wasm core, loads a model and opens whatever the
// address asks for (a shared link, ?image=). All computing (resizing and normalising the photo,
// the network, the explanation, colouring the map) happens in the wasm core (src/web.rs), the
// same code the command line runs.
//
//   store.js     the shared state, runs (cancellation) and the page state
//   core.js      the wasm core: started, one call at a time; errors and notices
//   workers.js   the core in workers (worker.js): the lead, the CPU pool, the shared-out Score-CAM
//   explain.js   forward pass and explanation of the current image
//   model.js     the model list, the picker, switching (models.js: download and Cache Storage)
//   inputs.js    drop, paste, file picker, samples, image URLs; decoding
//   draw.js      the canvas, the legend, the PNG download
//   controls.js  top-5, class search, Method options, view controls, progress
//   share.js     share links and lessons: format, building, opening; restart
//   teach.js     the teaching views (views/*.js), their tabs and lesson state; teachdata.js
//   plot.js      the views' small canvas drawings
//   testapi.js   window.scorecam

import { get, set } from './store.js';
import { init as initCore, start, wasm, session, fail, showNotice } from './core.js';
import { init as initInputs, setImageUrl } from './inputs.js';
import { init as initModel, listModels, defaultModel, selectModel, addOwnModel } from './model.js';
import { init as initShare, parseShareFragment, applySharedView, openShared, askForOwnModel } from './share.js';
import { init as initControls } from './controls.js';
import { init as initDraw } from './draw.js';
import { init as initTeach } from './teach.js';
import { expose } from './testapi.js';

async function boot() {
  expose();
  initCore();
  initInputs();
  initModel();
  initShare();
  if ('serviceWorker' in navigator && location.protocol !== 'file:') {
    navigator.serviceWorker.register('sw.js').catch((e) => console.warn('no offline shell:', e));
  }
  const params = new URLSearchParams(location.search);
  // ?workers=N: the CPU pool's size (1: one worker), instead of what the device allows.
  const workers = Math.trunc(Number(params.get('workers'))) || null;
  const { wasmMs, wasmBuild } = await start(params.get('backend') === 'cpu' ? 'cpu' : 'auto', { workers });
  set({
    backend: session.backend(),
    methods: wasm.methods().filter((m) => m.in_browser),
    colormaps: wasm.colormaps(),
    timings: { ...get().timings, wasmMs, wasmBuild },
  });
  initControls();
  initDraw();
  initTeach();
  let shared = null;
  let linkError = null;
  try {
    const { methods, colormaps } = get();
    shared = parseShareFragment(location.hash, { methods: methods.map((m) => m.name), colormaps: colormaps.map((c) => c.name) });
  } catch (err) {
    linkError = err;
  }
  await listModels();
  if (shared) applySharedView(shared);
  // A model of the link's author's own: used where this browser keeps it, else asked for below.
  const own = shared?.own && get().models.find((m) => m.own?.id === shared.own.id);
  if (own && shared.own.layer) own.own = { ...own.own, layer: shared.own.layer };
  const wanted = params.get('model') ?? shared?.model;
  const found = wanted && get().models.find((m) => m.name === wanted && !m.own);
  const entry = own || found || defaultModel();
  // (Only the name of an installed model is shown back: text from a link is not echoed.)
  if (wanted && !found) showNotice(`The model this link names is not installed here; using ${entry.display_name ?? entry.name}.`);
  const ownMissing = Boolean(shared?.own && !own);
  const imageFollows = Boolean(shared?.img || shared?.src || params.get('image')) && !ownMissing;
  await selectModel(entry.name, { settle: !imageFollows && !linkError });
  if (linkError) throw linkError; // after the model loaded: the page stays usable
  if (ownMissing) askForOwnModel(shared, addOwnModel);
  else if (shared?.img || shared?.src) await openShared(shared);
  else if (params.get('image')) await setImageUrl(params.get('image'));
  else if (get().page !== 'error') set({ page: 'ready' });
}

boot().catch(fail);
