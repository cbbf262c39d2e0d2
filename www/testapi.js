// window.scorecam: the page's API for tests and scripts (README, "The web app"). Its actions go
// through the same path as the page's own controls: a failure shows its message, sets the state
// to `error`, and the returned promise rejects with that message.

import { get, set, whenSettled } from './store.js';
import { wasm, session, act, loseDeviceForTesting } from './core.js';
import { explainClass } from './explain.js';
import { selectModel, addOwnModel } from './model.js';
import { whenModelsCached } from './models.js';
import { setImageBlob, setImageUrl } from './inputs.js';
import { shareLink } from './share.js';
import { channelRecords, curves, finished } from './teachdata.js';
import { whenRendered } from './teach.js';
import { compareAll, cancel as cancelCompare } from './views/compare.js';

const MAP_SIDE = 224;

/// The finished map at 224x224 (Float32Array, values in [0, 1]), its class and the top-5.
function getMap() {
  const { result, top5 } = get();
  if (!result || result.partial) return null;
  const { class: cls, name, probability } = result.explained;
  return { map: wasm.resizeMap(result.map, result.size, MAP_SIDE), size: MAP_SIDE, class: cls, name, probability, top5 };
}

/// An action of the API: resolves with getMap() once done.
const action = (fn) => (...args) => act(() => fn(...args)).then(getMap);

export function expose() {
  window.scorecam = {
    /** Loads an image from a URL (CORS) and explains it; resolves with getMap(). */
    loadImageFromUrl: action((url) => setImageUrl(url)),
    /** Loads an image from bytes (ArrayBuffer, Uint8Array or Blob) and explains it. */
    loadImageFromBytes: action((bytes) => setImageBlob(bytes instanceof Blob ? bytes : new Blob([bytes]), { kind: 'bytes' })),
    /** Explains another class of the current image. */
    setClass: action((index) => explainClass(index)),
    /** Switches the model (by its index.json name) and re-explains the current image. */
    selectModel: action((name) => selectModel(name)),
    /** Brings in the visitor's own model, as a dropped file is (without the dialog): `bytes` an
     *  ArrayBuffer, Uint8Array or Blob of an .onnx; `{name, labels (a list, or a labels file's
     *  text), layer, inputSize, mean, std}`. Resolves once it is the current model, with its info:
     *  {name, classes, layers: [{name, shape}], layer, inputSize, importMs, importPeakBytes}
     *  (the import's time, and its worker's memory at the end: the import's peak). */
    loadOwnModel: (bytes, choices = {}) => act(async () => {
      const blob = bytes instanceof Blob ? bytes : new File([bytes], `${choices.name ?? 'model'}.onnx`);
      await addOwnModel(blob, { interactive: false, choices });
      const { model } = get();
      const { importMs, peakBytes } = model.entry.own;
      return { name: model.info.name, classes: model.info.class_names.length, layers: model.info.layers, layer: model.info.target_layer, inputSize: model.info.input_size, importMs, importPeakBytes: peakBytes };
    }),
    getMap,
    /** The image explained: {width, height (as explained: at most 1024 px), bytes (its file's
     *  size, null for a camera frame), source ('bytes', 'url' or 'camera')}, or null. */
    image: () => {
      const i = get().image;
      return i && { width: i.width, height: i.height, bytes: i.blob?.size ?? null, source: i.source.kind };
    },
    whenSettled,
    /** Resolves once the loaded models are in Cache Storage (written in the background). */
    whenModelsCached,
    shareLink,
    state: () => get().page,
    /** Where the network runs: {name: 'webgpu' | 'cpu', adapter, binding_limit, notice}. */
    backend: () => get().backend,
    /** The models the picker lists: the installed ones' names, then the visitor's own. */
    models: () => get().models.map((m) => m.name),
    timings: () => structuredClone(get().timings),
    /** Destroys the GPU device, as a driver reset would (tests the recovery path). */
    loseDeviceForTesting,
    /** The CPU worker pool: {size, ready, lost} (size 1: the lead worker alone). */
    workers: () => session.pool(),
    /** Score-CAM's channels for the finished explanation: [{channel, constant, score}] (score:
     *  the class score of that channel's masked input, null where none was scored). */
    channels: () => channelRecords(finished()).map(({ channel, constant, score }) => ({ channel, constant, score })),
    /** The shown map's deletion and insertion curves, computed if needed: {deletion: {curve:
     *  Float32Array, auc}, insertion: {…}}, as `scorecam eval` computes them. */
    curves: () => act(() => {
      const r = finished();
      if (!r) throw new Error('Nothing is explained yet.');
      return curves(r);
    }),
    /** The teaching views' state: {tab, channel, sort, n, curve, t, stage}. */
    teach: () => structuredClone(get().teach),
    /** Changes the teaching views' state (e.g. {tab: 'steps', channel: 3}); resolves once drawn. */
    setTeach: (patch) => {
      set({ teach: { ...get().teach, ...patch } });
      return whenRendered();
    },
    /** Resolves once the open teaching view has drawn the current state. */
    whenTeachRendered: whenRendered,
    /** Opens the compare view on the finished explanation and resolves once every method that is
     *  not costly has run (plus the costly ones named in `methods`): one record per method,
     *  {method, map (Float32Array, size x size), size, seconds, forwards, deletion_auc,
     *  insertion_auc, average_drop, …}, in the grid's order. Rejects with an AbortError if the
     *  grid is cancelled (Cancel, a new image, class or model). */
    compare: ({ methods = [] } = {}) => act(() => compareAll({ methods })),
    /** Cancels the compare view's grid, as its Cancel button does. */
    cancelCompare,
    /** Terminates pool helper `i`, as a crash would; the pool replaces it. */
    killWorkerForTesting: (i) => session.killHelperForTesting(i),
  };
}
