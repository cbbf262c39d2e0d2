// The page's wasm core in Node, without a browser: one thread (as one pool worker), the CPU
// backend, EfficientNet-Lite0's full Score-CAM of ../shared's reference photo (chelsea, 224 x 224,
// the ImageNet-normalised tensor turned back into pixels). For comparing builds and for profiles:
//
//   node tests/e2e/core_bench.mjs [--dist dist] [--runs 2]
//   node --cpu-prof --cpu-prof-dir=/tmp/prof tests/e2e/core_bench.mjs --dist dist   # a V8 profile
//   node --experimental-wasm-relaxed-simd tests/e2e/core_bench.mjs --wasm scorecam_relaxed_bg.wasm
//   node tests/e2e/core_bench.mjs --chromium --wasm scorecam_relaxed_bg.wasm   # the same in a Chromium worker
//   node tests/e2e/core_bench.mjs --model DIST/www/models/vgg16.json --runs 1    # another model's manifest
//
// --chromium runs the same steps in a dedicated worker of headless Chromium (a blank page, not
// the app): the core in the browser's V8 without the page around it.
//
// Build with `SCORECAM_WASM_OPT=0 scripts/build_web.sh` for a profile with function names.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: join(REPO, 'dist') },
    wasm: { type: 'string', default: 'scorecam_bg.wasm' },
    runs: { type: 'string', default: '2' },
    chromium: { type: 'boolean', default: false },
    model: { type: 'string', default: join(REPO, 'www/models/efficientnet_lite0.json') },
    // The method's options as JSON, e.g. '{"batch_size": 4}' (the page's on the CPU).
    options: { type: 'string', default: '{}' },
  },
});
const dist = resolve(args.dist);


/// An .npy float32 [1, 3, h, w] ImageNet-normalised image as RGBA bytes.
function rgbaFromNormalisedNpy(path) {
  const bytes = readFileSync(path);
  const headerLen = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
  const [, , h, w] = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(Number);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen, bytes.byteOffset + bytes.length));
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const rgba = new Uint8Array(w * h * 4).fill(255);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < w * h; i++) rgba[i * 4 + c] = Math.round(Math.min(1, Math.max(0, data[c * w * h + i] * std[c] + mean[c])) * 255);
  }
  return { rgba, w, h };
}

/// The benchmark itself, in Node or (as a string) in a Chromium worker: `glue` is the module's
/// bindings, already initialised; `log` prints a line.
async function bench(glue, manifest, weights, { rgba, w, h }, runs, options, log) {
  const session = await glue.Session.start('cpu');
  let t = performance.now();
  session.loadModel(manifest, weights);
  log(`model load ${((performance.now() - t) / 1000).toFixed(2)} s (verify, decode, build: the first in this instance)`);
  t = performance.now();
  const { top5 } = await session.setImage(rgba, w, h);
  log(`forward ${(performance.now() - t).toFixed(0)} ms, top-1 ${top5[0].name} ${(100 * top5[0].probability).toFixed(1)}%`);
  for (let run = 0; run < runs; run++) {
    t = performance.now();
    let first = null;
    await session.explain({ class: null, method: 'scorecam', options }, () => {
      first ??= performance.now() - t;
      return true;
    });
    log(`Score-CAM ${((performance.now() - t) / 1000).toFixed(2)} s (first heatmap ${first.toFixed(0)} ms)`);
  }
}

const image = rgbaFromNormalisedNpy(join(REPO, '../shared/reference/inputs/chelsea_imagenet_norm.npy'));
const manifest = readFileSync(args.model, 'utf8');
const weights = readFileSync(join(dirname(resolve(args.model)), JSON.parse(manifest).weights.file));
if (!args.chromium) {
  const glue = await import(pathToFileURL(join(dist, 'scorecam.js')).href);
  glue.initSync({ module: readFileSync(join(dist, args.wasm)) });
  await bench(glue, manifest, weights, image, Number(args.runs), JSON.parse(args.options), console.log);
} else {
  const { launch } = await import('./browser.mjs');
  const { serve } = await import('./serve.mjs');
  const site = mkdtempSync(join(tmpdir(), 'scorecam-core-bench-'));
  process.on('exit', () => rmSync(site, { recursive: true, force: true })); // the weights: up to 138 MB
  for (const f of ['scorecam.js', args.wasm]) cpSync(join(dist, f), join(site, f));
  // The worker fetches the weights: VGG16's 138 MB is too large to pass through page.evaluate.
  writeFileSync(join(site, 'weights.bin'), weights);
  writeFileSync(join(site, 'bench.html'), '<!doctype html><title>core bench</title>');
  writeFileSync(join(site, 'worker.js'), `import * as glue from './scorecam.js';
const bench = ${bench.toString()};
onmessage = async ({ data }) => {
  try {
    glue.initSync({ module: new Uint8Array(await (await fetch('${args.wasm}')).arrayBuffer()) });
    const image = { ...data.image, rgba: new Uint8Array(data.image.rgba) };
    const weights = new Uint8Array(await (await fetch('weights.bin')).arrayBuffer());
    await bench(glue, data.manifest, weights, image, data.runs, data.options, (line) => postMessage({ line }));
    postMessage({ done: true });
  } catch (err) {
    postMessage({ error: String(err?.stack ?? err) });
  }
};`);
  const { server, url } = await serve(site, { host: 'localhost' });
  const context = await launch({ webgpu: false });
  try {
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'log' && console.log(m.text()));
    await page.goto(`${url}bench.html`);
    const failure = await page.evaluate(
      (data) =>
        new Promise((resolve) => {
          const worker = new Worker('worker.js', { type: 'module' });
          worker.onmessage = ({ data: m }) => (m.line ? console.log(m.line) : resolve(m.error ?? null));
          worker.onerror = (e) => resolve(e.message);
          worker.postMessage(data);
        }),
      { manifest, image: { ...image, rgba: [...image.rgba] }, runs: Number(args.runs), options: JSON.parse(args.options) },
    );
    if (failure) throw new Error(failure);
  } finally {
    await context.close();
    server.close();
  }
}
