// Browser numbers for the visitor's own model (docs/benchmarks.md, "Your own model in the page"),
// in headless Chromium here (not a test), on the CPU backend:
//   node tests/e2e/own_bench.mjs --lite0 LITE0.onnx --mobilenet MOBILENETV2.onnx [--dist DIR]
//                                [--isolated] [--screenshot docs/own_model_mobilenet.png] [--big resnet50.onnx]
//   - EfficientNet-Lite0 brought as ONNX against the installed (built-in) Lite0: Score-CAM of the
//     same photo, time and the maps' Pearson correlation
//   - MobileNetV2 brought as ONNX: the import (time, its worker's peak memory), our forward per
//     image (warm) against onnxruntime-web's wasm provider running the same file in the same page
//     (--isolated: cross-origin isolated, so the peer runs one thread per core), and its Score-CAM
// Needs a built dist/ with EfficientNet-Lite0 installed. Prints one JSON object.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { serve } from './serve.mjs';

const HERE = resolve(fileURLToPath(import.meta.url), '..');
const REPO = resolve(HERE, '../..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const DIST = resolve(REPO, arg('--dist', 'dist'));
const LITE0 = arg('--lite0', null);
const MOBILENET = arg('--mobilenet', null);
const SHOT = arg('--screenshot', null);
const BIG = arg('--big', null); // a large file: the import's peak memory and the pool it gets
const ISOLATED = process.argv.includes('--isolated');

const site = join(mkdtempSync(join(tmpdir(), 'scorecam-own-bench-')), 'site');
process.on('exit', () => rmSync(dirname(site), { recursive: true, force: true }));
cpSync(DIST, site, { recursive: true });
cpSync(join(HERE, 'node_modules/onnxruntime-web/dist'), join(site, 'ort'), { recursive: true });
if (MOBILENET) cpSync(MOBILENET, join(site, 'ort/model.onnx'));
const { server, url } = await serve(site, { host: 'localhost', isolated: ISOLATED });

const settled = (page) => page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: 1_800_000 });

function pearson(a, b) {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { const x = a[i] - ma, y = b[i] - mb; sab += x * y; saa += x * x; sbb += y * y; }
  return sab / Math.sqrt(saa * sbb);
}

/// Explains the sample photo with the current model: {totalMs, firstHeatmapMs, class, map}.
async function explain(page) {
  return page.evaluate(async () => {
    const m = await window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg');
    const t = window.scorecam.timings();
    return { totalMs: t.explain.totalMs, firstHeatmapMs: t.explain.firstHeatmapMs, forwardMs: t.forwardMs, class: m.class, top5: m.top5.map((c) => c.class), map: Array.from(m.map) };
  });
}

/// Brings the file at `path` in through window.scorecam.loadOwnModel (served beside the app and
/// fetched by the page: a 100 MB file does not pass through page.evaluate).
async function bring(page, path, choices) {
  const name = path.split('/').pop();
  cpSync(path, join(site, 'bench-models', name));
  return page.evaluate(async ({ name, choices }) => {
    const blob = await (await fetch(`bench-models/${name}`)).blob();
    return window.scorecam.loadOwnModel(new File([blob], name), choices);
  }, { name, choices });
}

/// Our forward of a 224x224 image on the lead worker, warm: median of 3 after one warm-up.
async function ourForward(page) {
  return page.evaluate(async () => {
    const { session } = await import(new URL('www/core.js', location.href).href);
    const rgba = new Uint8Array(224 * 224 * 4).map((_, i) => (i * 7) % 251);
    const times = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      await session.call('setImage', [rgba, 224, 224]);
      times.push(performance.now() - t);
    }
    return times.slice(1).sort((a, b) => a - b)[1];
  });
}

/// onnxruntime-web's wasm provider on ort/model.onnx in the same page: warm run, median of 3.
async function ortForward(page) {
  return page.evaluate(async () => {
    const ort = await import('./ort/ort.webgpu.min.mjs');
    ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
    ort.env.wasm.numThreads = self.crossOriginIsolated ? navigator.hardwareConcurrency : 1;
    const session = await ort.InferenceSession.create('./ort/model.onnx', { executionProviders: ['wasm'] });
    const data = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 7) % 251) / 255 - 0.5);
    const input = new ort.Tensor('float32', data, [1, 3, 224, 224]);
    const times = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      await session.run({ [session.inputNames[0]]: input });
      times.push(performance.now() - t);
    }
    return { threads: ort.env.wasm.numThreads, warmMs: times.slice(1).sort((a, b) => a - b)[1] };
  });
}

const out = { isolated: ISOLATED };
const ctx = await launch({ webgpu: false });
const page = await ctx.newPage();
page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
await page.goto(`${url}?model=efficientnet_lite0&backend=cpu`);
await settled(page);
out.crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);
out.workers = await page.evaluate(() => window.scorecam.workers());
if (LITE0) {
  const builtIn = await explain(page); // the first explanation warms the pool
  const again = await explain(page);
  // The tflite-style Lite0 reads images scaled to [-1, 1], as the installed Lite0's manifest says.
  const info = await bring(page, LITE0, { name: 'Lite0 from ONNX', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  await explain(page);
  const own = await explain(page);
  out.lite0 = {
    import: { ms: info.importMs, peakMiB: info.importPeakBytes / 2 ** 20, layer: info.layer },
    builtIn: { totalMs: again.totalMs, class: again.class, top5: again.top5, coldTotalMs: builtIn.totalMs },
    onnx: { totalMs: own.totalMs, class: own.class, top5: own.top5 },
    ratio: own.totalMs / again.totalMs,
    pearson: pearson(own.map, again.map),
  };
  console.error(JSON.stringify({ lite0: out.lite0 }));
}
if (MOBILENET) {
  // (1000 outputs and no names in the file: ImageNet's class names)
  const info = await bring(page, MOBILENET, { name: 'MobileNetV2 from ONNX' });
  out.mobilenet = { import: { ms: info.importMs, peakMiB: info.importPeakBytes / 2 ** 20, layer: info.layer, classes: info.classes } };
  // Score-CAM first: onnxruntime-web's threads keep spinning after its runs.
  const first = await explain(page);
  const warm = await explain(page);
  out.mobilenet.scorecam = { coldTotalMs: first.totalMs, totalMs: warm.totalMs, firstHeatmapMs: warm.firstHeatmapMs, class: warm.class, top5: warm.top5, name: (await page.evaluate(() => window.scorecam.getMap().name)) };
  out.mobilenet.workers = await page.evaluate(() => window.scorecam.workers());
  if (SHOT) await page.screenshot({ path: SHOT, fullPage: false });
  out.mobilenet.ourForwardMs = await ourForward(page);
  out.mobilenet.ort = await ortForward(page).catch((e) => ({ error: String(e).slice(0, 300) }));
  out.mobilenet.forwardRatio = out.mobilenet.ourForwardMs / out.mobilenet.ort.warmMs;
  console.error(JSON.stringify({ mobilenet: out.mobilenet }));
}
if (BIG) {
  const info = await bring(page, BIG, {});
  const timing = await page.evaluate(() => window.scorecam.timings().model);
  out.big = {
    file: BIG.split('/').pop(),
    fileMB: readFileSync(BIG).length / 1e6,
    import: { ms: info.importMs, peakMiB: info.importPeakBytes / 2 ** 20, layer: info.layer },
    // the int8 file kept in Cache Storage, and the weights each worker holds
    storedMB: await page.evaluate(async () => {
      const list = await (await (await caches.open('scorecam-own-v1')).match(new URL('own/index.json', location.href).href)).json();
      return list.at(-1).weightBytes / 1e6;
    }),
    f32MB: timing.weightBytes / 1e6,
    perWorkerMB: timing.weightBytesOnDevice / 1e6,
    buildMs: timing.buildMs,
    workers: await page.evaluate(() => window.scorecam.workers()),
  };
  console.error(JSON.stringify({ big: out.big }));
}
await ctx.close();
server.close();
console.log(JSON.stringify(out, null, 2));
