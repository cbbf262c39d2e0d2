// Browser numbers for docs/benchmarks.md, in headless Chromium here (not a test):
//   node tests/e2e/bench.mjs [--model NAME] [--no-explain] [--dist DIR] [--onnx lite0.onnx] [--gpu-cap-s 600] [--backends cpu,webgpu] [--screenshot app.png]
//                            [--query '&workers=1'] [--isolated]
// --query: added to the page's address (e.g. the CPU pool's size); --isolated: serve the page
// cross-origin isolated, so onnxruntime-web's wasm provider runs its threads (one per core).
// Needs a built dist/ with EfficientNet-Lite0 installed. Prints one JSON object.
//   - model load, cold (download + verify + build) and warm (Cache Storage), per backend
//   - Lite0 forward (warm), time to the first heatmap and to the full Score-CAM, per backend
//   - the same forward in onnxruntime-web (wasm and webgpu providers) on the same page
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
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
const ONNX = arg('--onnx', null);
const GPU_CAP_S = Number(arg('--gpu-cap-s', '600'));
const DIST = resolve(REPO, arg('--dist', 'dist'));
const MODEL = arg('--model', 'efficientnet_lite0');
const EXPLAIN = !process.argv.includes('--no-explain');
const QUERY = arg('--query', '');
const ISOLATED = process.argv.includes('--isolated');

const site = join(mkdtempSync(join(tmpdir(), 'scorecam-bench-')), 'site');
process.on('exit', () => rmSync(dirname(site), { recursive: true, force: true })); // the models: hundreds of MB
cpSync(DIST, site, { recursive: true });
const ortDir = join(HERE, 'node_modules/onnxruntime-web/dist');
if (ONNX) {
  cpSync(ortDir, join(site, 'ort'), { recursive: true });
  cpSync(ONNX, join(site, 'ort/model.onnx'));
}
const { server, url } = await serve(site, { host: 'localhost', isolated: ISOLATED });
/// A wasm build's size, plain and gzipped (null: not in this dist).
function wasmSize(name) {
  if (!existsSync(join(DIST, name))) return null;
  const wasm = readFileSync(join(DIST, name));
  return { bytes: wasm.length, gzipBytes: gzipSync(wasm, { level: 9 }).length };
}
const out = { wasm: wasmSize('scorecam_bg.wasm'), wasmRelaxedSimd: wasmSize('scorecam_relaxed_bg.wasm'), backends: {} };

const settled = (page, ms = 600_000) => page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: ms });

/// Our forward on a 224x224 image, warm: median of 3 after one warm-up. (The page's own session,
/// from its module: importing it again gives the same instance.)
async function ourForward(page) {
  return page.evaluate(async () => {
    const { session } = await import(new URL('www/core.js', location.href).href);
    const rgba = new Uint8Array(224 * 224 * 4).map((_, i) => (i * 7) % 251);
    const times = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      // The lead worker alone (a pooled session's setImage also forwards the image on the helpers).
      await (session.call ? session.call('setImage', [rgba, 224, 224]) : session.setImage(rgba, 224, 224));
      times.push(performance.now() - t);
    }
    return times.slice(1).sort((a, b) => a - b)[1];
  });
}

async function ortForward(page, provider) {
  return page.evaluate(async (provider) => {
    const ort = await import('./ort/ort.webgpu.min.mjs');
    ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
    // Threads only where the page is cross-origin isolated (--isolated): one per core.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? navigator.hardwareConcurrency : 1;
    const t0 = performance.now();
    const session = await ort.InferenceSession.create('./ort/model.onnx', { executionProviders: [provider] });
    const createMs = performance.now() - t0;
    const data = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 7) % 251) / 255 - 0.5);
    const input = new ort.Tensor('float32', data, [1, 3, 224, 224]);
    const times = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      await session.run({ [session.inputNames[0]]: input });
      times.push(performance.now() - t);
    }
    return { threads: ort.env.wasm.numThreads, createMs, firstMs: times[0], warmMs: times.slice(1).sort((a, b) => a - b)[1] };
  }, provider);
}

for (const backend of arg('--backends', 'cpu,webgpu').split(',')) {
  const r = {};
  out.backends[backend] = r;
  const ctx = await launch({ webgpu: backend === 'webgpu' });
  const page = await ctx.newPage();
  const query = `?model=${MODEL}${backend === 'cpu' ? '&backend=cpu' : ''}${QUERY}`;
  await page.goto(url + query);
  await settled(page);
  r.adapter = (await page.evaluate(() => window.scorecam.backend())).adapter;
  r.coldLoad = (await page.evaluate(() => window.scorecam.timings())).model;
  await page.evaluate(() => window.scorecam.whenModelsCached?.()); // (older builds awaited the write in the load)
  await page.reload();
  await settled(page);
  const warm = await page.evaluate(() => window.scorecam.timings());
  r.warmLoad = warm.model;
  r.wasmBuild = warm.wasmBuild ?? 'simd128'; // (builds before the relaxed-SIMD one had only that)
  r.forwardWarmMs = await ourForward(page);
  if (ONNX) {
    for (const provider of backend === 'cpu' ? ['wasm'] : ['webgpu']) {
      r[`ort_${provider}`] = await ortForward(page, provider).catch((e) => ({ error: String(e).slice(0, 300) }));
    }
  }
  // Full Score-CAM of a photo (the first explanation on this page).
  if (!EXPLAIN) {
    console.error(JSON.stringify({ [backend]: r }));
    await ctx.close();
    continue;
  }
  const t0 = Date.now();
  const run = page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg').then(() => window.scorecam.timings()));
  run.catch(() => {}); // left unfinished when the cap is reached
  let firstS = null;
  const cap = backend === 'cpu' ? 1800 : GPU_CAP_S;
  for (;;) {
    const [state, done] = await page.evaluate(() => [document.body.dataset.state, document.getElementById('run-progress').value]);
    if (firstS === null && done > 0) firstS = (Date.now() - t0) / 1000;
    if (state === 'done' || state === 'error' || (Date.now() - t0) / 1000 > cap) break;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  const state = await page.evaluate(() => document.body.dataset.state);
  r.firstHeatmapS = firstS;
  if (state === 'done') {
    const t = await run;
    r.explain = { forwardMs: t.forwardMs, firstHeatmapMs: t.explain.firstHeatmapMs, totalMs: t.explain.totalMs, stats: t.explain.stats, wallS: (Date.now() - t0) / 1000 };
    r.workers = await page.evaluate(() => window.scorecam.workers?.() ?? null);
  } else {
    const progress = await page.evaluate(() => document.getElementById('run-status-text').textContent);
    r.explain = { unfinishedAfterS: cap, state, progress };
  }
  console.error(JSON.stringify({ [backend]: r })); // as it comes: the WebGPU part can take long
  if (arg('--screenshot', null) && state === 'done') await page.screenshot({ path: arg('--screenshot'), fullPage: false });
  await ctx.close();
}
server.close();
console.log(JSON.stringify(out, null, 2));
