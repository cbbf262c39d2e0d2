// End-to-end tests of the browser app in Debian's Chromium (playwright-core).
//
// The app is built by scripts/build_web.sh into dist/; the test copies it, installs the tiny VGG
// test model beside the real ones (SwiftShader runs WebGPU on the CPU, about 100x slower than a
// GPU, so a full-size model would take many minutes), and checks the page against the native CLI
// on the same image and model.
//
// Environment: SCORECAM_DIST (default dist), SCORECAM_BIN (the native `scorecam`, default
// $CARGO_TARGET_DIR/release/scorecam), SCORECAM_E2E_OUT (screenshots, default tests/e2e/out).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { FAKE_CAMERA_FLAGS, launch } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const DIST = resolve(REPO, process.env.SCORECAM_DIST ?? 'dist');
const TARGET = process.env.CARGO_TARGET_DIR ?? join(REPO, 'target');
const BIN = process.env.SCORECAM_BIN ?? join(TARGET, 'release', 'scorecam');
const OUT = resolve(REPO, process.env.SCORECAM_E2E_OUT ?? 'tests/e2e/out');
const PHOTO = join(REPO, 'www/samples/chelsea.jpg');
const MODEL = 'vgg_tiny';
const SETTLE_MS = 300_000;

let site; // {server, url} of the copied app
let work; // temp dir with the app and the reference maps
const copies = []; // servers of altered copies of the app (serveCopy)

// ------------------------------------------------------------------ helpers

/// An .npy file of little-endian f32 (as the CLI writes): {shape, data}.
function readNpy(path) {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  assert.match(header, /'descr': '<f4'/);
  const shape = /'shape': \(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  const start = 10 + headerLen;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return { shape, data };
}

/// The CLI's map of `image` for the tiny model (at the model's input size), and its class.
function cliMap(image, cls, method = 'scorecam') {
  const out = join(work, `cli-${cls ?? 'top'}-${method}.png`);
  const args = ['explain', image, '--model', join(work, 'site/www/models', `${MODEL}.json`), '--out', out, '--json', '--method', method];
  if (cls !== undefined) args.push('--class', String(cls));
  const report = JSON.parse(execFileSync(BIN, args, { encoding: 'utf8' }));
  return { ...readNpy(out.replace(/\.png$/, '.npy')), report };
}

function pearson(a, b) {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { const x = a[i] - ma, y = b[i] - mb; sab += x * y; saa += x * x; sbb += y * y; }
  return sab / Math.sqrt(saa * sbb);
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function peakDistance(a, b, size) {
  const pa = argmax(a), pb = argmax(b);
  return Math.hypot((pa % size) - (pb % size), Math.floor(pa / size) - Math.floor(pb / size));
}

async function openApp(ctx, query = '', hash = '', base = site.url) {
  const page = await ctx.newPage();
  // Records any script a hostile link manages to run (its payloads call alert()).
  await page.addInitScript(() => {
    window.alert = () => {
      window.alerted = true;
    };
  });
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`[console] ${m.text().slice(0, 300)}`));
  await page.goto(`${base}${query}${hash}`);
  return page;
}

async function settled(page) {
  await page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: SETTLE_MS });
  return page.evaluate(() => document.body.dataset.state);
}

async function alertText(page) {
  return (await page.locator('[role=alert]').textContent()).trim();
}

/// Drops `bytes` on the page as a file, the way a drag from the desktop does.
async function dropFile(page, bytes, name, type) {
  await page.evaluate(({ b64, name, type }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([data], name, { type }));
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { b64: Buffer.from(bytes).toString('base64'), name, type });
}

async function getMap(page) {
  return page.evaluate(() => {
    const m = window.scorecam.getMap();
    return m && { ...m, map: Array.from(m.map) };
  });
}

/// The CLI map resampled to 224x224 by the page's own core (the same bilinear resize).
async function cliMap224(page, cli) {
  const size = cli.shape[0];
  return page.evaluate(({ data, size }) => Array.from(window.wasmBindings.resizeMap(new Float32Array(data), size, 224)), { data: Array.from(cli.data), size });
}

/// What the canvas shows: {width, height, data (RGBA)}.
async function canvasImage(page) {
  return page.evaluate(() => {
    const c = document.getElementById('canvas');
    return { width: c.width, height: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
  });
}

/// The standard deviation of the colour channels: 0 for a blank or flat canvas.
function colourSpread(rgba) {
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < rgba.length; i++) {
    if (i % 4 === 3) continue;
    n += 1;
    sum += rgba[i];
    sq += rgba[i] * rgba[i];
  }
  return Math.sqrt(sq / n - (sum / n) ** 2);
}

function meanAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/// Keeps a screenshot of the run (best effort: a screenshot is evidence, not a check).
async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true, timeout: 15_000 }).catch((e) => console.log(`  (no screenshot ${name}: ${e.message.split('\n')[0]})`));
}

/// Drops the photo on the page and checks the explanation against the CLI's and what the canvas
/// shows; returns the map.
async function checkDroppedPhoto(page, label) {
  await dropFile(page, readFileSync(PHOTO), 'chelsea.jpg', 'image/jpeg');
  assert.equal(await settled(page), 'done', await alertText(page));
  const first = await getMap(page);
  assert.equal(first.map.length, 224 * 224);
  assert.equal(first.top5.length, 5);
  const cli = cliMap(PHOTO);
  assert.equal(first.class, cli.report.explained.class, 'same explained (top) class as the CLI');
  const ref = await cliMap224(page, cli);
  const r = pearson(first.map, ref);
  const d = peakDistance(first.map, ref, 224);
  console.log(`  ${label} vs CLI: pearson ${r.toFixed(4)}, peak distance ${d.toFixed(1)} px`);
  assert.ok(r > 0.95, `map correlates with the CLI's (pearson ${r})`);
  assert.ok(d <= 16, `peak within 16 px of the CLI's peak (${d})`);
  // The canvas shows the photo with a heatmap over it: compared with the bare photo drawn at the
  // same size (opacity 0), the overlay (opacity 0.5) differs.
  const overlay = await canvasImage(page);
  await page.locator('#opacity').fill('0');
  await page.waitForTimeout(200);
  const bare = await canvasImage(page);
  assert.deepEqual([bare.width, bare.height], [overlay.width, overlay.height], 'the same drawing size');
  assert.ok(colourSpread(bare.data) > 10, 'the photo is drawn');
  assert.ok(meanAbsDiff(bare.data, overlay.data) > 5, 'the heatmap is drawn over the photo');
  await page.locator('#opacity').fill('0.5');
  await shot(page, `${label}-explained`);
  return first;
}

/// Clicks the second class of the top-5, checks its map against the CLI's, and goes back to the
/// first class through the search box.
async function checkClassSwitch(page, first) {
  const second = first.top5[1].class;
  await page.locator(`#top5 button[data-class="${second}"]`).click();
  assert.equal(await settled(page), 'done', await alertText(page));
  const other = await getMap(page);
  assert.equal(other.class, second);
  const cli2 = cliMap(PHOTO, second);
  const ref = await cliMap224(page, cli2);
  const r = pearson(other.map, ref);
  console.log(`  class ${second}: pearson ${r.toFixed(4)} vs CLI (class ${cli2.report.explained.class}); vs first map ${pearson(other.map, first.map).toFixed(4)}`);
  assert.ok(r > 0.95, `class ${second} map correlates with the CLI's (pearson ${r})`);
  assert.match(await page.textContent('#explained'), new RegExp(`class ${second}\\b`));
  // back to the first class through the search box
  await page.locator('#class-search').fill(`${first.class}: class ${first.class}`);
  await page.locator('#class-search').dispatchEvent('change');
  assert.equal(await settled(page), 'done');
  assert.equal((await getMap(page)).class, first.class);
}

/// Opens the page's share link (its fragment changed by `rewrite`) in a new tab and checks it
/// explains the same class, same map.
async function checkShareLink(ctx, page, first, screenshot, rewrite = (hash) => hash) {
  const link = await page.evaluate(() => window.scorecam.shareLink());
  const hash = new URL(link).hash;
  assert.match(hash, /^#v=1&model=vgg_tiny&class=\d+&method=scorecam&/);
  assert.ok(hash.length < 80_000, `link is ${hash.length} characters`);
  const friend = await openApp(ctx, '', rewrite(hash));
  assert.equal(await settled(friend), 'done', await alertText(friend));
  const theirs = await getMap(friend);
  assert.equal(theirs.class, first.class);
  const r = pearson(theirs.map, first.map);
  console.log(`  share link round trip: pearson ${r.toFixed(4)}, ${hash.length} characters`);
  assert.ok(r > 0.98, `same map after the round trip (pearson ${r})`);
  assert.ok(peakDistance(theirs.map, first.map, 224) <= 8);
  await shot(friend, screenshot);
  await friend.close();
}

// ------------------------------------------------------------------ setup

before(async () => {
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'scorecam-e2e-'));
  cpSync(DIST, join(work, 'site'), { recursive: true });
  // Installs the tiny model the way a user installs VGG16 (the converter also updates index.json).
  execFileSync(BIN, ['convert', join(REPO, 'tests/fixtures/vgg_tiny/weights.safetensors'), '--arch', 'vgg_tiny', '--out', join(work, 'site/www/models', `${MODEL}.safetensors`)]);
  site = await serve(join(work, 'site'), { host: 'localhost' });
});

after(() => {
  site?.server.close();
  for (const s of copies) s.close();
  if (work) rmSync(work, { recursive: true, force: true }); // the site's copies: about 180 MB a run
});

/// A copy of the app changed by `edit(dir)`, served on its own origin (its own Cache Storage and
/// service worker); returns its URL. Only the tiny model's weights are copied.
async function serveCopy(name, edit) {
  const dir = join(work, name);
  cpSync(join(work, 'site'), dir, { recursive: true, filter: (p) => !p.endsWith('.safetensors') || p.endsWith(`${MODEL}.safetensors`) });
  edit(dir);
  const { server, url } = await serve(dir, { host: 'localhost' });
  copies.push(server);
  return url;
}

// ------------------------------------------------------------------ WebGPU (SwiftShader)

describe('on WebGPU (SwiftShader)', () => {
  let ctx;
  let page;
  let first; // the first explanation
  before(async () => {
    ctx = await launch({ webgpu: true });
    page = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(page), 'ready', await alertText(page));
  });
  after(() => ctx?.close());

  it('starts on WebGPU and lists the installed models', async () => {
    const backend = await page.evaluate(() => window.scorecam.backend());
    assert.equal(backend.name, 'webgpu');
    const models = await page.evaluate(() => window.scorecam.models());
    assert.ok(models.includes(MODEL) && models.includes('efficientnet_lite0'), String(models));
    await shot(page, 'webgpu-ready');
  });

  it('keeps int8 weights on the GPU and reuses its kernel probe after a reload', async () => {
    const first = await page.evaluate(() => window.scorecam.timings().model);
    assert.equal(first.deviceWeights, 'int8');
    assert.ok(first.weightBytesOnDevice < first.weightBytes / 2, JSON.stringify(first));
    assert.match(first.convKernels, /matmul/);
    assert.ok(first.probe && first.probe.layers >= 1, JSON.stringify(first));
    console.log(`  WebGPU: weights ${first.deviceWeights}, ${first.weightBytesOnDevice} bytes; kernels ${first.convKernels}; probe ${JSON.stringify(first.probe)}`);
    const again = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(again), 'ready', await alertText(again));
    const second = await again.evaluate(() => window.scorecam.timings().model);
    assert.equal(second.probe.fromCache, true, JSON.stringify(second));
    assert.equal(second.convKernels, first.convKernels);
    // A cached record the core cannot read is dropped and the probe runs again.
    await again.evaluate(() => new Promise((resolve, reject) => {
      const req = indexedDB.open('scorecam', 1);
      req.onsuccess = () => {
        const tx = req.result.transaction('conv-probes', 'readwrite');
        tx.objectStore('conv-probes').put({ key: 'from another version' });
        tx.oncomplete = () => { req.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
      req.onerror = () => reject(req.error);
    }));
    await again.reload();
    assert.equal(await settled(again), 'ready', await alertText(again));
    const third = await again.evaluate(() => window.scorecam.timings().model);
    assert.equal(third.probe.fromCache, false, JSON.stringify(third));
    await again.close();
  });

  it('explains a dropped photo where the CLI does', async () => {
    first = await checkDroppedPhoto(page, 'webgpu');
  });

  it('explains another class from the top-5 list', () => checkClassSwitch(page, first));

  it('round-trips a share link to the same explanation', () => checkShareLink(ctx, page, first, 'webgpu-shared-link'));

  it('shows the teaching views on the GPU too', async () => {
    await page.evaluate(() => window.scorecam.setClass(null));
    assert.equal(await settled(page), 'done', await alertText(page));
    const cli = cliMap(PHOTO).report;
    const ours = await page.evaluate(() => window.scorecam.channels());
    const worst = Math.max(...ours.map((c, i) => (c.score === null ? 0 : Math.abs(c.score - cli.channels[i].score))));
    assert.deepEqual(ours.map((c) => c.constant), cli.channels.map((c) => c.constant));
    console.log(`  WebGPU channel scores vs the CLI (the JPEG decoded by each): max abs diff ${worst.toExponential(2)}`);
    assert.ok(worst < 0.01, `channel scores differ from the CLI's by ${worst}`);
    for (const tab of ['steps', 'gradients', 'faithful', 'sanity']) {
      await page.evaluate((tab) => window.scorecam.setTeach({ tab, stage: tab === 'sanity' ? 2 : 0 }), tab);
      assert.equal(await page.evaluate(() => document.getElementById('alert').hidden), true, `${tab}: ${await alertText(page)}`);
    }
    const curves = await page.evaluate(async () => {
      const c = await window.scorecam.curves();
      return { n: c.deletion.curve.length, auc: c.insertion.auc };
    });
    assert.equal(curves.n, 6);
    assert.ok(curves.auc > 0 && curves.auc < 1);
    assert.match(await page.textContent('#sanity-stage'), /^Stage 2 of 7/);
    await shot(page, 'webgpu-teach-sanity');
    await page.evaluate(() => window.scorecam.setTeach({ tab: null, stage: 0 }));
  });

  it('recovers when the GPU device is lost', async () => {
    await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/coffee.jpg'));
    assert.equal(await settled(page), 'done');
    assert.equal(await page.evaluate(() => window.scorecam.loseDeviceForTesting()), true);
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 20_000 });
    assert.match(await alertText(page), /GPU device was lost/);
    await shot(page, 'error-device-lost');
    await Promise.all([page.waitForNavigation({ timeout: 60_000 }), page.locator('#alert-restart').click()]);
    assert.equal(await settled(page), 'done', await alertText(page));
    assert.equal((await getMap(page)).map.length, 224 * 224);
  });

  it('explains a visitor\'s ONNX model on the GPU, int8 on the device, like the CLI', async () => {
    const onnx = join(REPO, 'tests/fixtures/onnx/tiny_resnet/tiny_resnet.dynamo.dynamic.onnx');
    const p = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    const info = await p.evaluate((b64) => window.scorecam.loadOwnModel(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), { name: 'tiny resnet' }), readFileSync(onnx).toString('base64'));
    assert.equal(info.layer, 'relu_4');
    const model = await p.evaluate(() => window.scorecam.timings().model);
    assert.equal(model.deviceWeights, 'int8', JSON.stringify(model));
    assert.ok(model.probe && model.probe.layers >= 1, JSON.stringify(model));
    const mine = await p.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg').then((m) => ({ ...m, map: Array.from(m.map) })));
    const out = join(work, 'own-gpu', 'tiny_resnet.safetensors');
    mkdirSync(join(work, 'own-gpu'), { recursive: true });
    execFileSync(BIN, ['convert', onnx, '--out', out]);
    const map = join(work, 'own-gpu', 'cli.png');
    const report = JSON.parse(execFileSync(BIN, ['explain', PHOTO, '--model', out, '--out', map, '--json'], { encoding: 'utf8' }));
    assert.equal(mine.class, report.explained.class);
    const r = pearson(mine.map, await cliMap224(p, { ...readNpy(map.replace(/\.png$/, '.npy')), report }));
    console.log(`  own model on WebGPU vs the CLI: pearson ${r.toFixed(4)}`);
    assert.ok(r > 0.99, `the GPU's map is the CLI's (pearson ${r})`);
    await p.close();
  });
});

// ------------------------------------------------------------------ hostile links

describe('share links from strangers', () => {
  let ctx;
  before(async () => {
    ctx = await launch({ webgpu: false });
  });
  after(() => ctx?.close());

  const cases = {
    'markup in a field': '#v=1&model=vgg_tiny&class=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E',
    'an image that is not one': `#v=1&model=vgg_tiny&img=${Buffer.from('<script>alert(1)</script>').toString('base64url')}`,
    'an oversized fragment': `#v=1&img=${'A'.repeat(300_000)}`,
    'a javascript: image address': '#v=1&src=javascript%3Aalert(1)',
  };
  for (const [name, hash] of Object.entries(cases)) {
    it(`rejects ${name} with a message`, async () => {
      const page = await openApp(ctx, `?backend=cpu&model=${MODEL}`, hash);
      assert.equal(await settled(page), 'error');
      const text = await alertText(page);
      assert.match(text, /shared link|damaged/, text);
      // Nothing from the link became markup.
      const injected = await page.evaluate(() => document.querySelectorAll('#alert *:not(span):not(button), img[src="x"]').length);
      assert.equal(injected, 0);
      assert.equal(await page.evaluate(() => typeof window.alerted), 'undefined');
      if (name === 'markup in a field') await shot(page, 'error-tampered-link');
      await page.close();
    });
  }
});

// ------------------------------------------------------------------ CPU fallback

describe('on the CPU fallback', () => {
  let ctx;
  let page;
  let first;
  before(async () => {
    ctx = await launch({ webgpu: false });
    page = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(page), 'ready', await alertText(page));
  });
  after(() => ctx?.close());

  it('runs without WebGPU, with a notice, and matches the CLI', async () => {
    const backend = await page.evaluate(() => window.scorecam.backend());
    assert.equal(backend.name, 'cpu');
    assert.match(await page.textContent('#notice'), /CPU/);
    // The linear layers stay the file's int8 rows (cpu_linear), the map still the CLI's (f32).
    const model = await page.evaluate(() => window.scorecam.timings().model);
    assert.equal(model.deviceWeights, 'int8-linear');
    assert.ok(model.weightBytesOnDevice < model.weightBytes, JSON.stringify(model));
    first = await checkDroppedPhoto(page, 'cpu');
  });

  it('fetches one wasm build: relaxed SIMD where the browser has it, else SIMD128, same map', async () => {
    const wasmFetched = (p) => p.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname.split('/').pop()).filter((name) => name.endsWith('.wasm')));
    // Chromium has relaxed SIMD (www/wasmbuild.js's probe); nothing else is downloaded.
    assert.equal((await page.evaluate(() => window.scorecam.timings())).wasmBuild, 'relaxed-simd');
    assert.deepEqual(await wasmFetched(page), ['scorecam_relaxed_bg.wasm']);
    const p = await openApp(ctx, `?model=${MODEL}&simd=simd128`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    assert.equal((await p.evaluate(() => window.scorecam.timings())).wasmBuild, 'simd128');
    assert.deepEqual(await wasmFetched(p), ['scorecam_bg.wasm']);
    await dropFile(p, readFileSync(PHOTO), 'chelsea.jpg', 'image/jpeg');
    assert.equal(await settled(p), 'done', await alertText(p));
    const m = await getMap(p);
    assert.equal(m.class, first.class);
    // The fused multiply-add rounds once where SIMD128 rounds twice.
    const diff = Math.max(...m.map.map((v, i) => Math.abs(v - first.map[i])));
    console.log(`  SIMD128 build vs relaxed SIMD: max abs diff ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max abs diff ${diff}`);
    await p.close();
  });

  it('falls back to the SIMD128 build when the relaxed-SIMD one does not load', async () => {
    const url = await serveCopy('site-no-relaxed', (dir) => rmSync(join(dir, 'scorecam_relaxed_bg.wasm')));
    const p = await openApp(ctx, `?model=${MODEL}`, '', url);
    assert.equal(await settled(p), 'ready', await alertText(p));
    assert.equal((await p.evaluate(() => window.scorecam.timings())).wasmBuild, 'simd128');
    await dropFile(p, readFileSync(PHOTO), 'chelsea.jpg', 'image/jpeg');
    assert.equal(await settled(p), 'done', await alertText(p));
    assert.equal((await getMap(p)).class, first.class);
    await p.close();
  });

  it('explains another class from the top-5 list', () => checkClassSwitch(page, first));

  it('spreads Score-CAM over a pool of workers with the map of one worker', async () => {
    const pool = await page.evaluate(() => window.scorecam.workers());
    assert.ok(pool.size >= 2, `a pool on this page (hardwareConcurrency ${await page.evaluate(() => navigator.hardwareConcurrency)})`);
    // Another class of the dropped photo, once every helper holds it: a run shared by the pool.
    const cls = first.top5[1].class;
    const maps = {};
    for (const workers of [1, 3, null]) {
      const p = await openApp(ctx, `?model=${MODEL}${workers ? `&workers=${workers}` : ''}`);
      assert.equal(await settled(p), 'ready', await alertText(p));
      await dropFile(p, readFileSync(PHOTO), 'chelsea.jpg', 'image/jpeg');
      assert.equal(await settled(p), 'done', await alertText(p));
      const ready = await p.evaluate(() => window.scorecam.workers());
      assert.equal(ready.size, workers ?? pool.size);
      assert.equal(ready.ready, ready.size - 1, 'every helper holds the model and the photo');
      maps[workers] = await p.evaluate((c) => window.scorecam.setClass(c).then((m) => ({ ...m, map: Array.from(m.map) })), cls);
      const { lastRun } = await p.evaluate(() => window.scorecam.workers());
      console.log(`  ${ready.size} worker(s): batches scored per worker ${JSON.stringify(lastRun)}`);
      if (ready.size > 1) assert.ok(lastRun.slice(1).some((n) => n > 0), `helpers scored batches: ${JSON.stringify(lastRun)}`);
      await p.close();
    }
    for (const workers of [3, null]) {
      const m = maps[workers];
      assert.equal(m.class, cls);
      const diff = Math.max(...m.map.map((v, i) => Math.abs(v - maps[1].map[i])));
      console.log(`  ${workers ?? pool.size} workers vs 1: max abs diff ${diff}`);
      assert.ok(diff <= 1e-6, `max abs diff ${diff}`);
    }
  });

  it('replaces a pool worker that dies, and the map is the same', async () => {
    const p = await openApp(ctx, `?model=${MODEL}&workers=3`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    assert.equal(await p.evaluate(() => window.scorecam.killWorkerForTesting(0)), true);
    await dropFile(p, readFileSync(PHOTO), 'chelsea.jpg', 'image/jpeg');
    assert.equal(await settled(p), 'done', await alertText(p));
    const m = await getMap(p);
    const pool = await p.evaluate(() => window.scorecam.workers());
    assert.equal(pool.lost, 1, JSON.stringify(pool));
    assert.equal(pool.size, 3);
    assert.equal(m.class, first.class);
    const diff = Math.max(...m.map.map((v, i) => Math.abs(v - first.map[i])));
    assert.ok(diff <= 1e-6, `max abs diff ${diff}`);
    // the replacement works: the next explanation uses the whole pool again
    await p.evaluate((c) => window.scorecam.setClass(c), first.top5[1].class);
    assert.equal(await settled(p), 'done', await alertText(p));
    assert.equal((await p.evaluate(() => window.scorecam.workers())).ready, 2);
    await p.close();
  });

  it('keeps the page responsive while EfficientNet-Lite0 is explained', async () => {
    const p = await openApp(ctx, '?model=efficientnet_lite0');
    assert.equal(await settled(p), 'ready', await alertText(p));
    // A main-thread timer every 20 ms for 4 s of the explanation: how late does it fire?
    const lateness = await p.evaluate(async () => {
      window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg').catch(() => {});
      await new Promise((ok) => {
        const t = setInterval(() => {
          if (document.getElementById('run-progress')?.value > 0) ok(clearInterval(t));
        }, 10);
      });
      const late = [];
      let last = performance.now();
      await new Promise((ok) => {
        const t = setInterval(() => {
          const now = performance.now();
          late.push(now - last - 20);
          last = now;
          if (late.length >= 200) ok(clearInterval(t));
        }, 20);
      });
      return { max: Math.max(...late), state: document.body.dataset.state, done: document.getElementById('run-progress').value };
    });
    console.log(`  main-thread timer during the explanation: at most ${lateness.max.toFixed(1)} ms late (${lateness.done} masks scored)`);
    assert.equal(lateness.state, 'explaining', 'measured during the explanation');
    assert.ok(lateness.max <= 100, `a 20 ms timer fired up to ${lateness.max} ms late`);
    await p.close();
  });

  it('round-trips a share link to the same explanation', () => checkShareLink(ctx, page, first, 'cpu-shared-link'));

  it('opens a link written before method= (variant=official)', () =>
    checkShareLink(ctx, page, first, 'cpu-legacy-link', (hash) => hash.replace('&method=scorecam&', '&variant=official&')));

  it('explains with Grad-CAM from the Method list like the CLI', async () => {
    // a top-5 class whose Grad-CAM is not empty (the tiny model's can be all zeros)
    const constant = (m) => m.data.every((v) => v === m.data[0]);
    const cls = first.top5.map((t) => t.class).find((c) => !constant(cliMap(PHOTO, c, 'gradcam')));
    assert.notEqual(cls, undefined, 'some top-5 class has a non-empty Grad-CAM');
    await page.locator('details.options > summary').click(); // the Method list is under "Method options"
    await page.locator('#method-select').selectOption('gradcam');
    assert.equal(await settled(page), 'done', await alertText(page));
    await page.locator(`#top5 button[data-class="${cls}"]`).click();
    assert.equal(await settled(page), 'done', await alertText(page));
    const m = await getMap(page);
    assert.equal(m.class, cls);
    const r = pearson(m.map, await cliMap224(page, cliMap(PHOTO, cls, 'gradcam')));
    console.log(`  Grad-CAM class ${cls} vs CLI: pearson ${r.toFixed(4)}`);
    assert.ok(r > 0.99, `Grad-CAM map correlates with the CLI's (pearson ${r})`);
    await page.locator('#method-select').selectOption('scorecam');
    assert.equal(await settled(page), 'done', await alertText(page));
  });

  it('keeps the model in Cache Storage across reloads', async () => {
    await page.evaluate(() => window.scorecam.whenModelsCached());
    await page.reload();
    assert.equal(await settled(page), 'ready');
    const t = await page.evaluate(() => window.scorecam.timings());
    assert.equal(t.model.fromCache, true, JSON.stringify(t));
    // Every convolution on our CPU kernels (src/models/cpu_conv.rs), none on flex's.
    assert.match(t.model.convKernels, /^\d+ cpu$/, JSON.stringify(t.model));
  });

  it('takes images from the file picker, the clipboard and a URL parameter', async () => {
    await page.setInputFiles('#file-input', join(REPO, 'www/samples/coffee.jpg'));
    assert.equal(await settled(page), 'done', await alertText(page));
    const picked = await getMap(page);
    // A class chosen for one photo does not carry over: the next photo explains its own top class.
    const chosen = picked.top5[3].class;
    assert.equal((await page.evaluate((c) => window.scorecam.setClass(c), chosen)).class, chosen);
    await page.evaluate(async () => {
      const bytes = await (await fetch('www/samples/astronaut.jpg')).arrayBuffer();
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'pasted.jpg', { type: 'image/jpeg' }));
      window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt }));
    });
    assert.equal(await settled(page), 'done', await alertText(page));
    const pasted = await getMap(page);
    assert.equal(pasted.class, pasted.top5[0].class);
    assert.ok(pearson(picked.map, pasted.map) < 0.999, 'a different photo gives a different map');
    const viaUrl = await openApp(ctx, `?model=${MODEL}&image=${encodeURIComponent(`${site.url}www/samples/astronaut.jpg`)}`);
    assert.equal(await settled(viaUrl), 'done', await alertText(viaUrl));
    assert.ok(pearson((await getMap(viaUrl)).map, pasted.map) > 0.99, 'the same photo by URL gives the same map');
    await viaUrl.close();
  });

  it('honours EXIF orientation as the CLI does', async () => {
    const rotated = join(REPO, 'tests/fixtures/exif_orientation6.jpg'); // 96x48 stored, shown 48x96
    const m = await page.evaluate(async (b64) => {
      const r = await window.scorecam.loadImageFromBytes(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
      const c = document.getElementById('canvas');
      return { map: Array.from(r.map), width: c.width, height: c.height };
    }, readFileSync(rotated).toString('base64'));
    assert.ok(m.height === 2 * m.width, `shown upright (portrait): ${m.width}x${m.height}`);
    const r = pearson(m.map, await cliMap224(page, cliMap(rotated)));
    assert.ok(r > 0.95, `map matches the CLI's on the rotated photo (pearson ${r})`);
  });

  it('opens offline after the first visit (service worker and Cache Storage)', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready);
    await ctx.setOffline(true);
    try {
      await page.reload();
      assert.equal(await settled(page), 'ready', await alertText(page));
      const t = await page.evaluate(() => window.scorecam.timings());
      assert.equal(t.model.fromCache, true);
      assert.equal(await page.evaluate(() => window.scorecam.backend().name), 'cpu');
    } finally {
      await ctx.setOffline(false);
    }
  });

  it('says so when a file is not an image', async () => {
    await dropFile(page, Buffer.from('just some notes, not a picture\n'), 'notes.txt', 'text/plain');
    assert.equal(await settled(page), 'error');
    assert.match(await alertText(page), /notes\.txt.*not an image/);
    await shot(page, 'error-not-an-image');
  });

  it('says so when a JPEG is corrupt', async () => {
    const jpeg = readFileSync(PHOTO);
    const corrupt = Buffer.concat([jpeg.subarray(0, 2), Buffer.alloc(600, 0x5a)]); // SOI, then garbage
    await dropFile(page, corrupt, 'broken.jpg', 'image/jpeg');
    assert.equal(await settled(page), 'error');
    assert.match(await alertText(page), /broken\.jpg.*(corrupt|not an image)/);
  });

  it('fails an API load of a non-image as a drop does: message, state error, rejection', async () => {
    await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/coffee.jpg'));
    assert.equal(await settled(page), 'done', await alertText(page));
    const viaBytes = await page.evaluate(() =>
      window.scorecam.loadImageFromBytes(new TextEncoder().encode('just some notes, not a picture\n')).then(() => 'resolved', (e) => e.message));
    assert.match(viaBytes, /not an image/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    assert.ok(await page.isVisible('#alert'));
    assert.equal((await page.textContent('#alert-text')).trim(), viaBytes);
    const viaUrl = await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/index.json').then(() => 'resolved', (e) => e.message));
    assert.match(viaUrl, /index\.json.*not an image/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    assert.equal((await page.textContent('#alert-text')).trim(), viaUrl);
  });

  it('downloads the PNG at the photo\'s own size, not the 1024 px working copy', async () => {
    await page.evaluate(async () => {
      const photo = await createImageBitmap(await (await fetch('www/samples/chelsea.jpg')).blob());
      const c = document.createElement('canvas');
      c.width = 1600;
      c.height = 1064;
      c.getContext('2d').drawImage(photo, 0, 0, c.width, c.height);
      const big = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.9));
      await window.scorecam.loadImageFromBytes(big);
    });
    assert.equal(await settled(page), 'done', await alertText(page));
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    const png = readFileSync(await download.path());
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1600, 1064], 'IHDR width and height');
  });
});

// ------------------------------------------------------------------ teaching views

describe('teaching views (CPU backend)', () => {
  // The fixture's own 32x32 PNG: decoded exactly alike by the page and the CLI, so the numbers
  // can be compared to the digit.
  const INPUT = join(REPO, 'tests/fixtures/vgg_tiny/input.png');
  let ctx;
  let page;
  let cli; // `scorecam explain --json` on INPUT
  before(async () => {
    ctx = await launch({ webgpu: false, extra: FAKE_CAMERA_FLAGS });
    page = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(page), 'ready', await alertText(page));
    await page.evaluate((b64) => window.scorecam.loadImageFromBytes(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), readFileSync(INPUT).toString('base64'));
    assert.equal(await settled(page), 'done', await alertText(page));
    cli = cliMap(INPUT).report;
  });
  after(() => ctx?.close());

  const teach = (patch) => page.evaluate((p) => window.scorecam.setTeach(p), patch);
  /// Moves a range input as a user would (an input event), then waits for the view.
  const slide = (p, id, value) => p.evaluate(({ id, value }) => {
    const input = document.getElementById(id);
    input.value = String(value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    return window.scorecam.whenTeachRendered();
  }, { id, value });
  const canvasPixels = (id) => page.evaluate((id) => {
    const c = document.getElementById(id);
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
  }, id);

  it('shows every channel step by step, with the CLI\'s scores', async () => {
    const t0 = Date.now();
    await page.locator('#tab-steps').click();
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    const firstViewMs = Date.now() - t0;
    const ours = await page.evaluate(() => window.scorecam.channels());
    const theirs = cli.channels;
    assert.equal(ours.length, 16);
    assert.equal(theirs.length, 16);
    let worst = 0;
    for (const [i, c] of ours.entries()) {
      assert.equal(c.channel, i);
      assert.equal(c.constant, theirs[i].constant, `channel ${i} constant`);
      assert.equal(c.score === null, theirs[i].score === null, `channel ${i} scored`);
      if (c.score !== null) worst = Math.max(worst, Math.abs(c.score - theirs[i].score));
    }
    console.log(`  channel scores vs the CLI: max abs diff ${worst.toExponential(2)}; view drawn ${firstViewMs} ms after the click`);
    assert.ok(worst <= 1e-5, `channel scores differ from the CLI's by ${worst}`);
    assert.equal(ours.filter((c) => c.constant).length, 5);
    assert.match(await page.textContent('#steps-summary'), /16 activation maps of 8x8.*5 constant.*11 scored/);
    // The grid is drawn; the keyboard moves the selection and the detail follows.
    assert.ok(colourSpread(await canvasPixels('steps-grid')) > 10, 'thumbnails drawn');
    const before = (await page.evaluate(() => window.scorecam.teach())).channel;
    await page.locator('#steps-grid').focus();
    await page.keyboard.press('ArrowRight');
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    const after = (await page.evaluate(() => window.scorecam.teach())).channel;
    assert.notEqual(after, before);
    assert.match(await page.textContent('#steps-numbers'), new RegExp(`Channel${after} \\(2 of 16 by score\\)`));
    const score = ours[after].score;
    assert.match(await page.textContent('#steps-numbers'), new RegExp(score.toPrecision(4).replace('.', '\\.')));
    assert.ok(colourSpread(await canvasPixels('steps-masked')) > 5, 'the masked input is drawn');
    // The build-up: one channel's map differs from all of them.
    const all = await canvasPixels('buildup-canvas');
    await slide(page, 'buildup', 1);
    assert.equal((await page.evaluate(() => window.scorecam.teach())).n, 1);
    assert.ok(meanAbsDiff(all, await canvasPixels('buildup-canvas')) > 1, 'the map from one channel differs from the full map');
    assert.match(await page.textContent('#buildup-n'), /^1 of 11$/);
    await shot(page, 'teach-steps');
    await teach({ n: null });
  });

  it('draws the deletion and insertion curves that scorecam eval computes', async () => {
    const data = join(work, 'eval-data');
    mkdirSync(data, { recursive: true });
    cpSync(INPUT, join(data, 'input.png'));
    writeFileSync(join(data, 'labels.csv'), `file,class_index,bboxes\ninput.png,${cli.explained.class},\n`);
    const out = join(work, 'eval-out');
    execFileSync(BIN, ['eval', '--model', join(work, 'site/www/models', `${MODEL}.json`), '--data', data, '--methods', 'scorecam', '--metrics', 'deletion,insertion,ad-ai-paper', '--out', out]);
    const record = JSON.parse(readFileSync(join(out, 'records.jsonl'), 'utf8').trim().split('\n')[0]);
    await page.locator('#tab-faithful').click();
    const curves = await page.evaluate(async () => {
      const c = await window.scorecam.curves();
      return { deletion: { curve: Array.from(c.deletion.curve), auc: c.deletion.auc }, insertion: { curve: Array.from(c.insertion.curve), auc: c.insertion.auc } };
    });
    for (const kind of ['deletion', 'insertion']) {
      const d = Math.abs(curves[kind].auc - record.scores[`${kind}_auc`]);
      console.log(`  ${kind} AUC: page ${curves[kind].auc.toFixed(6)}, scorecam eval ${record.scores[`${kind}_auc`].toFixed(6)}`);
      assert.ok(d <= 1e-4, `${kind} AUC differs by ${d}`);
      assert.equal(curves[kind].curve.length, record.curves[kind].length);
      curves[kind].curve.forEach((v, i) => assert.ok(Math.abs(v - record.curves[kind][i]) <= 1e-4, `${kind}[${i}]`));
    }
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    assert.match(await page.textContent('#faithful-summary'), new RegExp(`Deletion AUC ${curves.deletion.auc.toFixed(4)}.*Average Drop ${record.scores.ad_ai_paper_drop.toFixed(1)}%`));
    await page.locator('#curve-kind').selectOption('insertion');
    await slide(page, 'curve-step', 3);
    assert.match(await page.textContent('#curve-caption'), new RegExp(`Step 3 of 5: .* inserted, p\\(class 5\\) = ${curves.insertion.curve[3].toFixed(3)}`));
    await page.locator('#compare-curves').click();
    await page.waitForFunction(() => document.getElementById('faithful-plot').dataset.compared === 'done', null, { timeout: SETTLE_MS });
    await shot(page, 'teach-faithful');
  });

  it('sets Grad-CAM\'s weights beside Score-CAM\'s scores', async () => {
    await page.locator('#tab-gradients').click();
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    assert.match(await page.textContent('#gradients-summary'), /^11 channels\. Rank correlation between the two weightings: -?\d\.\d\d\./);
    assert.ok(colourSpread(await canvasPixels('gradients-scatter')) > 5, 'the scatter plot is drawn');
    for (const id of ['cmp-scorecam', 'cmp-gradcam', 'cmp-gradcampp']) assert.ok(colourSpread(await canvasPixels(id)) > 10, `${id} drawn`);
    // The keyboard: Home selects Grad-CAM's strongest channel, ArrowRight the next one.
    await page.locator('#gradients-scatter').focus();
    await page.keyboard.press('Home');
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    assert.match(await page.textContent('#gradients-selected'), /^Channel \d+: Grad-CAM weight .* \(#1\), Score-CAM score/);
    await page.keyboard.press('ArrowRight');
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    assert.match(await page.textContent('#gradients-selected'), /\(#2\), Score-CAM score/);
    await shot(page, 'teach-gradients');
  });

  it('steps through the sanity check as scorecam sanity does', async () => {
    const out = join(work, 'sanity-out');
    execFileSync(BIN, ['sanity', '--model', join(work, 'site/www/models', `${MODEL}.json`), INPUT, '--methods', 'scorecam', '--out', out]);
    const sanity = JSON.parse(readFileSync(join(out, 'sanity.json'), 'utf8'));
    await page.locator('#tab-sanity').click();
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    assert.equal(await page.inputValue('#sanity-method'), 'gradcam', 'Grad-CAM first on the CPU');
    // (the tiny model's Grad-CAM of its top class is all zeros: compare Score-CAM)
    await page.locator('#sanity-method').selectOption('scorecam');
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    for (const stage of [1, 2, 3, 4, 5]) {
      await page.locator('#sanity-next').click();
      await page.evaluate(() => window.scorecam.whenTeachRendered());
      assert.match(await page.textContent('#sanity-stage'), new RegExp(`Stage ${stage} of 7: randomised down to ${sanity.stages[stage].replace('.', '\\.')}`));
      const rho = Number(/Spearman rank correlation with the original map: (-?[\d.]+)/.exec(await page.textContent('#sanity-rho'))[1]);
      console.log(`  sanity stage ${stage} (${sanity.stages[stage]}): Spearman ${rho} (scorecam sanity ${sanity.spearman[0][stage].toFixed(3)})`);
      assert.ok(Math.abs(rho - sanity.spearman[0][stage]) <= 2e-3);
    }
    // (the tiny model's channel scores are nearly equal: its map changes once the convolutions do)
    assert.ok(sanity.spearman[0][5] < 0.99, `the map changed by stage 5 (${sanity.spearman[0][5]})`);
    await shot(page, 'teach-sanity');
  });

  it('reopens a lesson link in the same view and state, controls hidden', async () => {
    await teach({ tab: 'steps', channel: 9, sort: 'channel', n: 4 });
    const link = await page.evaluate(() => window.scorecam.shareLink({ lesson: true }));
    assert.match(new URL(link).hash, /&tab=steps&ch=9&sort=channel&n=4&hide=input%2Cclasses%2Coptions%2Ctabs&/);
    const friend = await openApp(ctx, '', new URL(link).hash);
    assert.equal(await settled(friend), 'done', await alertText(friend));
    await friend.evaluate(() => window.scorecam.whenTeachRendered());
    const state = await friend.evaluate(() => window.scorecam.teach());
    assert.deepEqual([state.tab, state.channel, state.sort, state.n], ['steps', 9, 'channel', 4]);
    assert.equal(await friend.isVisible('#input-panel'), false, 'the lesson hides the inputs');
    assert.equal(await friend.isVisible('#teach-tabs'), false);
    assert.equal(await friend.isVisible('#view-steps'), true);
    assert.match(await friend.textContent('#steps-numbers'), /Channel9 \(10 of 16 by channel\)/);
    assert.match(await friend.textContent('#buildup-n'), /^4 of 11$/);
    await shot(friend, 'teach-lesson');
    await friend.locator('#show-controls').click();
    assert.equal(await friend.isVisible('#input-panel'), true);
    await friend.close();
  });

  it('says what is wrong with a hostile lesson link', async () => {
    const link = await page.evaluate(() => window.scorecam.shareLink({ lesson: false }));
    const base = new URLSearchParams(new URL(link).hash.slice(1));
    for (const k of ['tab', 'ch', 'sort', 'n', 'curve', 't', 'stage', 'sm', 'hide']) base.delete(k);
    const lesson = (extra) => `#${base.toString()}&${extra}`;
    const cases = [
      ['#v=1&model=vgg_tiny&tab=evil', /shared link is malformed: the value of “tab”/],
      ['#v=1&model=vgg_tiny&ch=3', /names no view/],
      ['#v=1&model=vgg_tiny&tab=steps&hide=input,everything', /value of “hide”/],
      ['#v=1&model=vgg_tiny&tab=sanity&sm=%3Cscript%3E', /value of “sm”/],
      [lesson('tab=steps&ch=99999'), /names channel 99999, but the target layer has 16 channels/],
      [lesson('tab=steps&n=12'), /builds the map from 12 channels, but this explanation scored 11/],
      [lesson('tab=faithful&t=999'), /scrubs the curve to step 999, but the curves have 5 steps/],
      [lesson('tab=sanity&stage=40'), /stage 40 out of range \(the model has 7 layer groups\)/],
    ];
    for (const [bad, message] of cases) {
      const p = await openApp(ctx, '', bad);
      await p.waitForFunction(() => !document.getElementById('alert').hidden, null, { timeout: SETTLE_MS });
      assert.match(await alertText(p), message);
      await p.close();
    }
  });

  it('follows the camera live with Grad-CAM and explains a frozen frame', async () => {
    const before = await page.evaluate(() => window.scorecam.workers());
    assert.ok(before.size >= 2, 'a pool with helpers');
    await page.locator('#tab-camera').click();
    await page.locator('#camera-start').click();
    await page.waitForFunction(() => /frame [3-9]|frame \d\d/.test(document.getElementById('camera-status').textContent), null, { timeout: SETTLE_MS });
    // Only the lead explains a live frame: the helpers are not sent them.
    assert.equal((await page.evaluate(() => window.scorecam.workers())).imagesToHelpers, before.imagesToHelpers, 'no live frame went to a helper');
    await page.locator('#camera-freeze').click();
    await page.waitForFunction(() => /Frozen/.test(document.getElementById('camera-status').textContent), null, { timeout: SETTLE_MS });
    assert.equal(await settled(page), 'done', await alertText(page));
    const state = await page.evaluate(() => ({ method: document.getElementById('explained').textContent, result: window.scorecam.getMap() !== null }));
    assert.ok(state.result);
    const channels = await page.evaluate(() => window.scorecam.channels());
    assert.equal(channels.length, 16, 'the frozen frame is explained with Score-CAM');
    await shot(page, 'teach-camera');
  });

  it('fits a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const tab of ['steps', 'gradients', 'faithful', 'sanity', 'camera', 'compare']) {
        await teach({ tab });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `the ${tab} view is ${overflow} px wider than the screen`);
      }
      await teach({ tab: 'steps' });
      await shot(page, 'teach-phone');
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it('gives EfficientNet-Lite0\'s channel scores as the CLI does, full size', async () => {
    // ../shared's PNG of the reference photo: decoded alike by the browser and the CLI.
    const png = join(REPO, '../shared/reference/inputs/chelsea.png');
    const p = await openApp(ctx, '?model=efficientnet_lite0');
    assert.equal(await settled(p), 'ready', await alertText(p));
    await p.evaluate((b64) => window.scorecam.loadImageFromBytes(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), readFileSync(png).toString('base64'));
    assert.equal(await settled(p), 'done', await alertText(p));
    const ours = await p.evaluate(() => window.scorecam.channels());
    const report = JSON.parse(execFileSync(BIN, ['explain', png, '--model', join(work, 'site/www/models/efficientnet_lite0.json'), '--out', join(work, 'lite0.png'), '--json'], { encoding: 'utf8' }));
    assert.equal(ours.length, 1280);
    let worst = 0;
    for (const [i, c] of ours.entries()) {
      const theirs = report.channels[i];
      assert.equal(c.constant, theirs.constant, `channel ${i} constant`);
      assert.equal(c.score === null, theirs.score === null, `channel ${i} scored`);
      if (c.score !== null) worst = Math.max(worst, Math.abs(c.score - theirs.score));
    }
    console.log(`  EfficientNet-Lite0: ${ours.filter((c) => c.score !== null).length} channel scores vs the CLI: max abs diff ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `channel scores differ from the CLI's by ${worst}`);
    await p.close();
  });

  it('says so when the camera is refused', async () => {
    const plain = await launch({ webgpu: false });
    try {
      const p = await openApp(plain, `?model=${MODEL}`);
      assert.equal(await settled(p), 'ready', await alertText(p));
      await p.locator('#tab-camera').click();
      await p.locator('#camera-start').click();
      await p.waitForFunction(() => !document.getElementById('alert').hidden, null, { timeout: 60_000 });
      assert.match(await alertText(p), /camera permission was refused|No camera was found/);
    } finally {
      await plain.close();
    }
  });
});

// ------------------------------------------------------------------ the compare view

describe('the compare view (CPU backend)', () => {
  const INPUT = join(REPO, 'tests/fixtures/vgg_tiny/input.png');
  let ctx;
  let page;
  let records; // window.scorecam.compare()'s
  before(async () => {
    ctx = await launch({ webgpu: false });
    page = await openApp(ctx, `?model=${MODEL}&backend=cpu`);
    assert.equal(await settled(page), 'ready', await alertText(page));
    await page.evaluate((b64) => window.scorecam.loadImageFromBytes(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), readFileSync(INPUT).toString('base64'));
    assert.equal(await settled(page), 'done', await alertText(page));
  });
  after(() => ctx?.close());

  const cells = () => page.evaluate(() => [...document.querySelectorAll('#compare-grid .compare-cell')].map((el) => ({ ...el.dataset, text: el.textContent })));
  const gridState = (p = page) => p.evaluate(() => document.getElementById('compare-body').dataset.state);

  it('fills a cell per CAM method with the numbers scorecam compare gives', async () => {
    const t0 = Date.now();
    records = await page.evaluate(async () => (await window.scorecam.compare()).map((r) => ({ ...r, map: Array.from(r.map) })));
    const ms = Date.now() - t0;
    const methods = await page.evaluate(() => window.wasmBindings.methods().filter((m) => m.in_browser && m.kind === 'cam'));
    const costly = methods.filter((m) => m.costly).map((m) => m.name);
    const shown = await cells();
    assert.equal(shown.length, methods.length, 'one cell per CAM method');
    // CAM needs global pooling and one linear layer: the tiny VGG's head is refused with its reason.
    const failed = shown.filter((c) => c.state === 'failed');
    assert.deepEqual(failed.map((c) => c.method), ['cam'], failed.map((c) => `${c.method}: ${c.text}`).join('\n'));
    assert.match(failed[0].text, /global average pooling followed by one linear layer/);
    assert.deepEqual(shown.filter((c) => c.state === 'costly').map((c) => c.method).sort(), [...costly].sort());
    assert.equal(records.length, methods.length - costly.length - 1);
    for (const r of records) {
      for (const k of ['seconds', 'forwards', 'deletion_auc', 'insertion_auc', 'average_drop']) assert.ok(Number.isFinite(r[k]), `${r.method} ${k}`);
      assert.equal(r.map.length, r.size * r.size);
      const cell = shown.find((c) => c.method === r.method);
      assert.equal(cell.state, 'done');
      assert.match(cell.text, new RegExp(`deletion AUC${r.deletion_auc.toFixed(4)}`));
    }
    // The same numbers as the CLI's compare on the same image (the metrics are deterministic).
    const out = join(work, 'compare-cli');
    // (the grid's quick curves: every fourth of eval's points, the CLI's --curve-step 896)
    const cli = JSON.parse(execFileSync(BIN, ['compare', INPUT, '--model', join(work, 'site/www/models', `${MODEL}.json`), '--json', '--out', out, '--curve-step', '896'], { encoding: 'utf8' }));
    let worst = 0;
    for (const r of records) {
      const theirs = cli.find((c) => c.method === r.method);
      assert.ok(theirs, `the CLI ran ${r.method}`);
      assert.equal(r.forwards, theirs.forwards, `${r.method} forwards`);
      assert.equal(r.curve_points, theirs.curve_points, `${r.method} curve points`);
      for (const k of ['deletion_auc', 'insertion_auc', 'average_drop']) worst = Math.max(worst, Math.abs(r[k] - theirs[k]) / (k === 'average_drop' ? 100 : 1));
    }
    console.log(`  ${records.length} methods in ${ms} ms; the metrics against scorecam compare's: max diff ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `the page's metrics differ from the CLI's by ${worst}`);
    // Costly methods: their passes and expected time, and a Run button.
    const sscam = shown.find((c) => c.method === 'sscam');
    assert.match(sscam.text, /Costly: 560 forward passes, about \d+ s here/);
    assert.equal(await page.isVisible('.compare-cell[data-method="sscam"] button'), true);
    // The teaching text of each method.
    assert.match(shown.find((c) => c.method === 'groupcam').text, /Versus Score-CAM: ./);
    await shot(page, 'compare-grid');
  });

  it('sorts by any column', async () => {
    for (const [key, field, sign] of [['deletion', 'deletion', 1], ['insertion', 'insertion', -1], ['drop', 'drop', 1], ['seconds', 'seconds', 1], ['forwards', 'forwards', 1]]) {
      await page.selectOption('#compare-sort', key);
      await page.evaluate(() => window.scorecam.whenTeachRendered());
      const values = (await cells()).filter((c) => c.state === 'done').map((c) => sign * Number(c[field]));
      assert.deepEqual(values, [...values].sort((a, b) => a - b), `sorted by ${key}`);
      assert.equal((await page.evaluate(() => window.scorecam.teach())).compareSort, key);
    }
    const api = await page.evaluate(async () => (await window.scorecam.compare()).map((r) => r.insertion_auc));
    assert.equal(api.length, records.length);
  });

  it('runs a costly method on request, and cancels', async () => {
    await page.locator('.compare-cell[data-method="sscam"] button').click();
    await page.waitForFunction(() => document.querySelector('.compare-cell[data-method="sscam"]').dataset.state === 'running', null, { timeout: 60_000 });
    await page.locator('#compare-cancel').click();
    await page.waitForFunction(() => document.getElementById('compare-body').dataset.state === 'cancelled', null, { timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('.compare-cell[data-method="sscam"]').dataset.state === 'cancelled', null, { timeout: 60_000 });
    assert.match(await page.textContent('#compare-status'), /cancelled \(by you\)/);
    assert.equal(await page.isVisible('#compare-again'), true);
    // Run it again: the done cells stay, SS-CAM runs.
    const sscam = await page.evaluate(async () => (await window.scorecam.compare({ methods: ['sscam'] })).find((r) => r.method === 'sscam'));
    assert.ok(Number.isFinite(sscam.deletion_auc));
    assert.ok(sscam.forwards >= 560, `SS-CAM ran ${sscam.forwards} forward passes`);
    // Another class cancels the grid as its explanation starts, and the view starts a grid for
    // the new class.
    const other = (await page.evaluate(() => window.scorecam.getMap())).top5[1].class;
    const outcome = await page.evaluate(async (c) => {
      const running = window.scorecam.compare({ methods: ['iscam'] }).then(() => 'done', (e) => e.name);
      await window.scorecam.setClass(c);
      return running;
    }, other);
    assert.equal(outcome, 'AbortError');
    assert.match(await page.textContent('#compare-status'), /./);
    const again = await page.evaluate(async () => (await window.scorecam.compare()).map((r) => r.class));
    assert.ok(again.length > 0 && again.every((c) => c === other), 'the new grid explains the new class');
  });

  it('reopens the compare view from a share link', async () => {
    // Full curves (scorecam eval's points) run the grid again with them.
    await page.selectOption('#compare-resolution', 'full');
    await page.evaluate(() => window.scorecam.whenTeachRendered());
    const full = await page.evaluate(async () => (await window.scorecam.compare()).map((r) => r.curve_points));
    assert.ok(full.length > 0 && full.every((n) => n === 6), `full curves on 32 x 32: 1024 / 224 + 1 points, got ${full}`);
    await page.selectOption('#compare-sort', 'insertion');
    const link = await page.evaluate(() => window.scorecam.shareLink());
    assert.match(new URL(link).hash, /&tab=compare&csort=insertion&ccurves=full&/);
    const friend = await openApp(ctx, '?backend=cpu', new URL(link).hash);
    assert.equal(await settled(friend), 'done', await alertText(friend));
    assert.equal(await friend.isVisible('#view-compare'), true);
    await friend.waitForFunction(() => document.getElementById('compare-body').dataset.state === 'done', null, { timeout: SETTLE_MS });
    const shown = await friend.evaluate(() => [...document.querySelectorAll('#compare-grid .compare-cell[data-state="done"]')].map((el) => Number(el.dataset.insertion)));
    assert.ok(shown.length >= records.length - 1);
    assert.deepEqual(shown, [...shown].sort((a, b) => b - a), 'sorted by insertion AUC, as shared');
    assert.equal(await friend.evaluate(() => document.getElementById('compare-sort').value), 'insertion');
    assert.equal(await friend.evaluate(() => document.getElementById('compare-resolution').value), 'full');
    await friend.close();
    const bad = await openApp(ctx, '', '#v=1&model=vgg_tiny&tab=compare&csort=evil');
    await bad.waitForFunction(() => !document.getElementById('alert').hidden, null, { timeout: SETTLE_MS });
    assert.match(await alertText(bad), /value of “csort”/);
    await bad.close();
  });

  it('runs the whole grid on EfficientNet-Lite0', async () => {
    // The issue's target: every method that is not costly, metrics included, in 60 s on 2 cores.
    const p = await openApp(ctx, '?model=efficientnet_lite0&backend=cpu');
    assert.equal(await settled(p), 'ready', await alertText(p));
    await p.evaluate((b64) => window.scorecam.loadImageFromBytes(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), readFileSync(PHOTO).toString('base64'));
    assert.equal(await settled(p), 'done', await alertText(p));
    const t0 = Date.now();
    const rows = await p.evaluate(async () => (await window.scorecam.compare()).map(({ map, ...r }) => r));
    const s = (Date.now() - t0) / 1000;
    const pool = await p.evaluate(() => window.scorecam.workers());
    console.log(`  EfficientNet-Lite0: ${rows.length} methods in ${s.toFixed(1)} s on ${pool.size} workers, curves of ${rows[0].curve_points} points`);
    assert.ok(rows.every((r) => r.curve_points === 57), 'the quick curves: every fourth of eval\'s 225 points');
    for (const r of rows) console.log(`    ${r.method.padEnd(22)} ${r.seconds.toFixed(2).padStart(6)} s  +${r.metric_seconds.toFixed(2).padStart(6)} s metrics  ${String(r.forwards).padStart(5)} fwd  del ${r.deletion_auc.toFixed(4)}  ins ${r.insertion_auc.toFixed(4)}  drop ${r.average_drop.toFixed(1)}`);
    assert.ok(rows.some((r) => r.method === 'cam'), 'CAM runs on Lite0 (global pooling and one linear layer)');
    await shot(p, 'compare-lite0');
    await p.close();
  });
});

// ------------------------------------------------------------------ broken sites, failed switches

describe('your own model (CPU backend)', () => {
  // A small ONNX file of ResNet's pattern (tests/fixtures/onnx), 32 x 32, 10 classes.
  const ONNX = join(REPO, 'tests/fixtures/onnx/tiny_resnet/tiny_resnet.dynamo.dynamic.onnx');
  const OTHER = join(REPO, 'tests/fixtures/onnx/tiny_mobilenet/tiny_mobilenet.dynamo.dynamic.onnx');
  const LABELS = Array.from({ length: 10 }, (_, i) => `kind ${i}`);
  const LAYER = 'relu_2'; // not the default (relu_4): the first block's output
  let ctx;
  let page;
  let mine; // the explanation with the visitor's model
  let cli; // the CLI's, on the same file converted the same way
  before(async () => {
    ctx = await launch({ webgpu: false });
    page = await openApp(ctx, `?model=${MODEL}`);
    assert.equal(await settled(page), 'ready', await alertText(page));
    // The CLI on the same file, converted as the page converts it (the same int8 file).
    const out = join(work, 'own', 'tiny_resnet.safetensors');
    const labels = join(work, 'own', 'labels.txt');
    mkdirSync(join(work, 'own'), { recursive: true });
    writeFileSync(labels, `${LABELS.join('\n')}\n`);
    execFileSync(BIN, ['convert', ONNX, '--out', out, '--labels', labels]);
    const map = join(work, 'own', 'cli.png');
    const report = JSON.parse(execFileSync(BIN, ['explain', PHOTO, '--model', out, '--layer', LAYER, '--out', map, '--json'], { encoding: 'utf8' }));
    cli = { ...readNpy(map.replace(/\.png$/, '.npy')), report };
  });
  after(() => ctx?.close());

  it('takes a dropped .onnx through its dialog: a layer chosen, labels given, explained like the CLI', async () => {
    await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    await dropFile(page, readFileSync(ONNX), 'tiny_resnet.onnx', 'application/octet-stream');
    await page.waitForSelector('#own-dialog[open] #own-details:not([hidden])', { timeout: SETTLE_MS });
    const layers = await page.$$eval('#own-layer option', (o) => o.map((x) => x.value));
    assert.equal(layers.at(-1), 'relu_4');
    assert.equal(await page.inputValue('#own-layer'), 'relu_4', 'the default: the last layer before the pooling');
    assert.match(await page.textContent('#own-facts'), /10 classes/);
    assert.match(await page.textContent('#own-memory'), /peaked at \d+ MiB/);
    await page.selectOption('#own-layer', LAYER);
    await page.setInputFiles('#own-labels', { name: 'labels.txt', mimeType: 'text/plain', buffer: Buffer.from(LABELS.join('\n')) });
    await shot(page, 'own-model-dialog');
    await page.click('#own-use');
    // (the page stays `done` with the previous explanation until the switch begins)
    await page.waitForFunction(() => window.scorecam.timings().model?.name.startsWith('own-'), null, { timeout: SETTLE_MS });
    assert.equal(await settled(page), 'done', await alertText(page));
    mine = await getMap(page);
    const model = await page.evaluate(() => window.scorecam.timings().model);
    assert.match(model.name, /^own-/);
    assert.ok(mine.top5.every((t) => t.name.startsWith('kind ')), JSON.stringify(mine.top5));
    assert.equal(mine.class, cli.report.explained.class, 'the CLI explains the same class');
    const r = pearson(mine.map, await cliMap224(page, cli));
    console.log(`  own model (layer ${LAYER}) vs CLI on the converted file: pearson ${r.toFixed(5)}`);
    assert.ok(r >= 0.999, `the page's map is the CLI's (pearson ${r})`);
    assert.equal(await page.locator('#remove-model').isVisible(), true);
    await shot(page, 'own-model-explained');
  });

  it('runs on the CPU pool, with Grad-CAM, the teaching views and Download PNG', async () => {
    // Every helper of the pool holds the converted model (not the original file) and scores.
    const pool = await page.evaluate(() => window.scorecam.workers());
    assert.ok(pool.size >= 2 && pool.ready === pool.size - 1, JSON.stringify(pool));
    // The teaching views: Score-CAM's channel scores are the CLI's on the same file and layer.
    const ours = await page.evaluate(() => window.scorecam.channels());
    const worst = Math.max(...ours.map((c, i) => (c.score === null ? 0 : Math.abs(c.score - cli.report.channels[i].score))));
    assert.equal(ours.length, cli.report.channels.length);
    assert.ok(worst < 0.01, `channel scores differ from the CLI's by ${worst}`);
    for (const tab of ['steps', 'gradients', 'faithful', 'sanity']) {
      await page.evaluate((tab) => window.scorecam.setTeach({ tab, stage: tab === 'sanity' ? 2 : 0 }), tab);
      assert.equal(await page.evaluate(() => document.getElementById('alert').hidden), true, `${tab}: ${await alertText(page)}`);
    }
    assert.match(await page.textContent('#sanity-stage'), /^Stage 2 of \d+/);
    await page.evaluate(() => window.scorecam.setTeach({ tab: null, stage: 0 }));
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    const png = readFileSync(await download.path());
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    // Grad-CAM from the Method list, as the CLI computes it on the same file and layer.
    await page.locator('details.options > summary').click();
    await page.locator('#method-select').selectOption('gradcam');
    assert.equal(await settled(page), 'done', await alertText(page));
    const grad = await getMap(page);
    const map = join(work, 'own', 'cli-gradcam.png');
    execFileSync(BIN, ['explain', PHOTO, '--model', join(work, 'own', 'tiny_resnet.safetensors'), '--layer', LAYER, '--method', 'gradcam', '--class', String(grad.class), '--out', map]);
    const ref = await cliMap224(page, readNpy(map.replace(/\.png$/, '.npy')));
    const r = pearson(grad.map, ref);
    console.log(`  own model Grad-CAM vs CLI (each decoding the JPEG): pearson ${r.toFixed(4)}`);
    assert.ok(r > 0.99, `Grad-CAM correlates with the CLI's (pearson ${r})`);
    await page.locator('#method-select').selectOption('scorecam');
    assert.equal(await settled(page), 'done', await alertText(page));
  });

  it('finds it in the picker after a reload, from Cache Storage', async () => {
    await page.reload();
    assert.equal(await settled(page), 'ready', await alertText(page));
    const names = await page.evaluate(() => window.scorecam.models());
    const own = names.find((n) => n.startsWith('own-'));
    assert.ok(own, JSON.stringify(names));
    assert.equal(await page.$eval('#model-select optgroup', (g) => g.label), 'Your models');
    await page.selectOption('#model-select', own);
    assert.equal(await settled(page), 'ready', await alertText(page));
    const again = await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    assert.ok(pearson(again.map, mine.map) > 0.9999, 'the same layer, the same map');
  });

  it('opens a share link that names it elsewhere: asks for the file, refuses another, explains with the right one', async () => {
    const link = await page.evaluate(() => window.scorecam.shareLink());
    const hash = new URL(link).hash;
    assert.match(hash, /[#&]own=[0-9a-f]{64}&/);
    assert.match(hash, /&ofile=tiny_resnet\.onnx/);
    assert.doesNotMatch(hash, /[#&]model=/);
    const stranger = await launch({ webgpu: false });
    try {
      const friend = await openApp(stranger, '?backend=cpu', hash);
      assert.equal(await settled(friend), 'ready', await alertText(friend));
      assert.match(await friend.textContent('#own-wanted'), /“tiny_resnet\.onnx” \(SHA-256 [0-9a-f]{16}…\)/);
      await dropFile(friend, readFileSync(OTHER), 'tiny_mobilenet.onnx', 'application/octet-stream');
      await friend.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: SETTLE_MS });
      assert.match(await alertText(friend), /not the file the link names: its SHA-256 is [0-9a-f]{12}…/);
      assert.equal(await friend.locator('#own-wanted').isVisible(), true, 'still waiting for the right file');
      await dropFile(friend, readFileSync(ONNX), 'tiny_resnet.onnx', 'application/octet-stream');
      await friend.waitForFunction(() => window.scorecam.timings().model?.name.startsWith('own-'), null, { timeout: SETTLE_MS });
      assert.equal(await settled(friend), 'done', await alertText(friend));
      const theirs = await getMap(friend);
      assert.equal(theirs.class, mine.class);
      const r = pearson(theirs.map, mine.map);
      console.log(`  own model share link: pearson ${r.toFixed(4)}`);
      assert.ok(r > 0.98, `the same explanation (pearson ${r})`);
      assert.equal(await friend.locator('#own-wanted').isVisible(), false);
      await shot(friend, 'own-model-shared');
    } finally {
      await stranger.close();
    }
  });

  it('loads one through the API, and removes it', async () => {
    const bytes = readFileSync(OTHER).toString('base64');
    const info = await page.evaluate(async ({ bytes }) => {
      const data = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
      return window.scorecam.loadOwnModel(data, { name: 'tiny mobilenet', labels: Array.from({ length: 10 }, (_, i) => `m${i}`) });
    }, { bytes });
    assert.equal(info.classes, 10);
    assert.ok(info.layers.length > 3 && info.layers.some((l) => l.name === info.layer), JSON.stringify(info));
    assert.equal(await settled(page), 'done', await alertText(page));
    assert.ok((await getMap(page)).top5[0].name.startsWith('m'));
    const before = (await page.evaluate(() => window.scorecam.models())).length;
    await page.click('#remove-model');
    await page.waitForFunction((n) => window.scorecam.models().length < n, before, { timeout: SETTLE_MS });
    assert.equal(await settled(page), 'done', await alertText(page));
    assert.match(await page.textContent('#notice'), /“tiny mobilenet” is removed from this browser/);
    assert.equal(await page.locator('#model-select').inputValue(), MODEL, 'back to the model used before');
  });

  it('refuses bad model files with a message, keeping the model in use', async () => {
    await page.selectOption('#model-select', MODEL);
    const shown = await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    const load = (file, choices = {}) => page.evaluate(async ({ b64, name, choices }) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return window.scorecam.loadOwnModel(new File([data], name), choices).then(() => 'loaded', (e) => e.message);
    }, { b64: readFileSync(file).toString('base64'), name: file.split('/').pop(), choices });
    const bad = (f) => join(REPO, 'tests/fixtures/onnx/bad', f);
    const notOnnx = join(work, 'own', 'notes.onnx');
    writeFileSync(notOnnx, 'these are not the weights you are looking for\n');
    const cases = [
      [notOnnx, {}, /not an ONNX model/],
      [bad('truncated.onnx'), {}, /truncated\.onnx.*not an ONNX model/],
      [bad('unsupported_op.onnx'), {}, /LRN is not supported/],
      [join(resolve(REPO, process.env.SCORECAM_DATA_DIR ?? '.data'), 'efficientnet_lite0.pth'), {}, /holds EfficientNet-Lite0.*takes torchvision's VGG16 as a \.pth/],
      [ONNX, { labels: ['one', 'two'] }, /labels name 2 classes, the model has 10/],
    ];
    for (const [file, choices, want] of cases) {
      const message = await load(file, choices);
      console.log(`  ${file.split('/').pop()}: ${message.slice(0, 120)}`);
      assert.match(message, want);
      assert.equal(await page.locator('#model-select').inputValue(), MODEL, 'the model in use stays selected');
    }
    // A 2 GB file is refused from its size, before anything is read.
    const huge = await page.evaluate(() => {
      const blob = new Blob([new Uint8Array(8)]);
      Object.defineProperty(blob, 'size', { value: 2 ** 31 });
      Object.defineProperty(blob, 'name', { value: 'huge.onnx' });
      return window.scorecam.loadOwnModel(blob).then(() => 'loaded', (e) => e.message);
    });
    assert.match(huge, /2048 MB; the page takes models of up to 768 MB/);
    assert.equal((await page.evaluate(() => window.scorecam.setClass(null))).class, shown.class, 'the model in use still explains');
    await shot(page, 'own-model-refused');
  });
});

describe('when something is broken', () => {
  let ctx;
  before(async () => {
    ctx = await launch({ webgpu: false });
  });
  after(() => ctx?.close());

  it('keeps the previous model when a switch fails its check', async () => {
    // A second model whose manifest's SHA-256 does not match its (otherwise good) weight file.
    const url = await serveCopy('site-bad-model', (dir) => {
      const models = join(dir, 'www/models');
      const manifest = JSON.parse(readFileSync(join(models, `${MODEL}.json`), 'utf8'));
      const sha = manifest.weights.sha256;
      manifest.weights.sha256 = (Number.parseInt(sha[0], 16) ^ 1).toString(16) + sha.slice(1);
      writeFileSync(join(models, 'altered.json'), JSON.stringify(manifest));
      const index = JSON.parse(readFileSync(join(models, 'index.json'), 'utf8'));
      index.models.push({ ...index.models.find((m) => m.name === MODEL), name: 'altered', manifest: 'altered.json' });
      writeFileSync(join(models, 'index.json'), JSON.stringify(index));
    });
    const page = await openApp(ctx, `?backend=cpu&model=${MODEL}`, '', url);
    assert.equal(await settled(page), 'ready', await alertText(page));
    const before = await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    await page.locator('#model-select').selectOption('altered');
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: SETTLE_MS });
    const message = (await page.textContent('#alert-text')).trim();
    assert.match(message, /sha256/i);
    await shot(page, 'error-model-switch');
    assert.equal(await page.locator('#model-select').inputValue(), MODEL, 'the picker shows the model in use');
    assert.equal((await getMap(page)).class, before.class, 'the explanation stays');
    const other = before.top5[1].class;
    assert.equal((await page.evaluate((c) => window.scorecam.setClass(c), other)).class, other, 'the model still explains');
    // The API fails the same way, and the page goes on.
    const rejected = await page.evaluate(() => window.scorecam.selectModel('altered').then(() => 'resolved', (e) => e.message));
    assert.equal(rejected, message);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    assert.equal(await page.locator('#model-select').inputValue(), MODEL);
    assert.equal((await page.evaluate(() => window.scorecam.setClass(null))).class, before.class);
    await page.close();
  });

  it('installs the offline shell and says so when no models are installed', async () => {
    const url = await serveCopy('site-no-models', (dir) => rmSync(join(dir, 'www/models/index.json')));
    const page = await openApp(ctx, '?backend=cpu', '', url);
    assert.equal(await settled(page), 'error');
    assert.match(await alertText(page), /No models are installed/);
    const worker = await page.evaluate(() => new Promise((resolve) => {
      setTimeout(() => resolve('not activated after 30 s'), 30_000);
      navigator.serviceWorker.ready.then(({ active }) => {
        if (active.state === 'activated') resolve(active.state);
        active.addEventListener('statechange', () => active.state === 'activated' && resolve(active.state));
      });
    }));
    assert.equal(worker, 'activated');
    await page.close();
  });

  it('says why when the WebAssembly core cannot start', async () => {
    const url = await serveCopy('site-bad-wasm', (dir) => {
      for (const build of ['scorecam_bg.wasm', 'scorecam_relaxed_bg.wasm']) writeFileSync(join(dir, build), Buffer.alloc(64 * 1024, 'not wasm '));
    });
    const page = await openApp(ctx, '', '', url);
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 10_000 });
    assert.match(await alertText(page), /WebAssembly core could not start: .+\. Try reloading/);
    assert.equal((await page.textContent('#backend-badge')).trim(), 'failed');
    await shot(page, 'error-no-wasm');
    await page.close();
  });

  it('names the browsers that work when this one lacks WebAssembly SIMD, and downloads no wasm', async () => {
    const page = await ctx.newPage();
    // As a browser without SIMD: no module using it validates (www/wasmbuild.js's probe does).
    await page.addInitScript(() => {
      const validate = WebAssembly.validate.bind(WebAssembly);
      WebAssembly.validate = (bytes) => !new Uint8Array(bytes).includes(0xfd) && validate(bytes);
    });
    const wasm = [];
    page.on('request', (r) => new URL(r.url()).pathname.endsWith('.wasm') && wasm.push(r.url()));
    await page.goto(site.url);
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 10_000 });
    assert.match(await alertText(page), /This browser cannot run the app: it does not run WebAssembly SIMD\. Chrome or Edge 91, Firefox 114, Safari 16\.4 or later do\./);
    assert.equal((await page.textContent('#backend-badge')).trim(), 'failed');
    assert.deepEqual(wasm, [], 'neither build is downloaded');
    await shot(page, 'error-no-simd');
    await page.close();
  });
});

// ------------------------------------------------------------------ hostile inputs

describe('hostile inputs (CPU backend)', () => {
  const HOSTILE = join(REPO, 'tests/fixtures/hostile');
  const CASE_MS = 60_000; // a case that has not settled by then hangs
  let ctx;
  let page;
  let errors = []; // page errors (uncaught exceptions) since the last case
  const rows = []; // the results table: {kind, input, expected, outcome, message}

  /// The page's state as a case must leave it: the image, model and result it had.
  async function snapshot(p = page) {
    return p.evaluate(() => {
      const m = window.scorecam.getMap();
      const c = document.getElementById('canvas');
      return {
        model: document.getElementById('model-select').value,
        class: m?.class ?? null,
        top5: m?.top5.map((t) => t.class) ?? null,
        map: m ? Array.from(m.map.filter((_, i) => i % 97 === 0)) : null,
        canvas: [c.width, c.height],
        panic: window.wasmBindings.lastPanic() ?? null,
      };
    });
  }

  /// Waits for `p` to settle, or says it hangs.
  async function settledOrHang(p = page) {
    return Promise.race([settled(p), new Promise((ok) => setTimeout(() => ok('hang'), CASE_MS))]);
  }

  function watch(p) {
    p.on('pageerror', (e) => errors.push(e.message));
    return p;
  }

  before(async () => {
    ctx = await launch({ webgpu: false, extra: ['--ignore-certificate-errors'] });
    page = watch(await openApp(ctx, `?backend=cpu&model=${MODEL}`));
    assert.equal(await settled(page), 'ready', await alertText(page));
    await page.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
  });
  after(async () => {
    await ctx?.close();
    if (!rows.length) return;
    const table = ['| input | kind | expected | outcome | message |', '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.input} | ${r.kind} | ${r.expected} | ${r.outcome} | ${r.message.replace(/\|/g, '\\|').slice(0, 160)} |`)].join('\n');
    const counts = `${rows.length} inputs: ${rows.filter((r) => r.outcome === 'refused').length} refused with a message, ${rows.filter((r) => r.outcome === 'decoded' || r.outcome === 'accepted').length} taken, ${rows.filter((r) => r.outcome === 'asked').length} asked about, panics: ${rows.filter((r) => r.panic).length}, hangs: ${rows.filter((r) => r.outcome === 'hang').length}`;
    console.log(`\nhostile-input corpus\n${table}\n${counts}`);
    writeFileSync(join(OUT, 'hostile.md'), `${table}\n\n${counts}\n`);
  });

  it('refuses or explains each file of the hostile image corpus, keeping the previous image and result', async () => {
    const cases = JSON.parse(readFileSync(join(HOSTILE, 'cases.json'), 'utf8'));
    const TYPES = { png: 'image/png', jpg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp', avif: 'image/avif', svg: 'image/svg+xml' };
    for (const c of cases) {
      errors = [];
      await page.evaluate(() => document.getElementById('alert-close').click());
      const before = await snapshot();
      const result = await page.evaluate(async ({ b64, name, type, ms }) => {
        const file = new File([Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0))], name, { type });
        const load = window.scorecam.loadImageFromBytes(file).then(() => ({ outcome: 'decoded', message: '' }), (e) => ({ outcome: 'refused', message: e.message }));
        return Promise.race([load, new Promise((ok) => setTimeout(() => ok({ outcome: 'hang', message: '' }), ms))]);
      }, { b64: readFileSync(join(HOSTILE, c.file)).toString('base64'), name: c.file, type: TYPES[c.file.split('.').pop()] ?? '', ms: CASE_MS });
      const after = await snapshot();
      rows.push({ kind: 'image', input: `${c.file} (${c.what}, ${c.bytes} B)`, expected: c.expect, ...result, panic: after.panic });
      assert.notEqual(result.outcome, 'hang', c.file);
      assert.equal(after.panic, null, `${c.file}: ${after.panic}`);
      assert.deepEqual(errors, [], c.file);
      if (c.expect !== 'either') assert.equal(result.outcome, c.expect, `${c.file}: ${result.message}`);
      if (result.outcome === 'refused') {
        assert.match(result.message, new RegExp(`“${c.file.replace(/\./g, '\\.')}”`), `${c.file}: the message names the file: ${result.message}`);
        assert.match(await alertText(page), /“/, 'the message is shown');
        const { panic, ...kept } = after;
        const { panic: _, ...was } = before;
        assert.deepEqual(kept, was, `${c.file}: the previous image, model and result stay`);
      } else {
        assert.equal(await page.evaluate(() => document.body.dataset.state), 'done');
      }
    }
  });

  it('refuses hostile share and lesson links with a message, runs nothing from them, and asks before fetching', async () => {
    const bombPng = readFileSync(join(HOSTILE, 'bomb_header_50000x50000.png')).toString('base64url');
    const cases = [
      ['markup in ?model=', `?backend=cpu&model=${encodeURIComponent('<img src=x onerror=alert(1)>')}`, '', 'accepted'],
      ['markup in a field', '?backend=cpu', `#v=1&model=${MODEL}&class=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E`, 'refused'],
      ['a script as the image', '?backend=cpu', `#v=1&model=${MODEL}&img=${Buffer.from('<script>alert(1)</script>').toString('base64url')}`, 'refused'],
      ['a 50000x50000 PNG header as the image', '?backend=cpu', `#v=1&model=${MODEL}&img=${bombPng}`, 'refused'],
      ['an oversized fragment', '?backend=cpu', `#v=1&img=${'A'.repeat(300_000)}`, 'refused'],
      ['a javascript: image address', '?backend=cpu', '#v=1&src=javascript%3Aalert(1)', 'refused'],
      ['an intranet http image address', '?backend=cpu', `#v=1&model=${MODEL}&src=${encodeURIComponent('http://192.168.1.1/admin.png')}`, 'refused'],
      ['a localhost https image address', '?backend=cpu', `#v=1&model=${MODEL}&src=${encodeURIComponent('https://localhost:1/x.png')}`, 'asked'],
      ['?image= on another https server', `?backend=cpu&model=${MODEL}&image=${encodeURIComponent('https://images.invalid/cat.jpg')}`, '', 'asked'],
      ['an image and an address together', '?backend=cpu', '#v=1&src=https%3A%2F%2Fa.example%2Fx.jpg&img=AAAA', 'refused'],
      ['a key twice', '?backend=cpu', '#v=1&class=1&class=2', 'refused'],
      ['a class the model lacks', '?backend=cpu', `#v=1&model=${MODEL}&class=99999&img=${readFileSync(join(REPO, 'tests/fixtures/exif_orientation6.jpg')).toString('base64url')}`, 'refused'],
      ['a lesson naming no view', '?backend=cpu', '#v=1&ch=3', 'refused'],
      ['a lesson with an unknown view', '?backend=cpu', '#v=1&tab=evil', 'refused'],
      ['a lesson hiding a control twice', '?backend=cpu', '#v=1&hide=input,input', 'refused'],
      ['an own model without its file', '?backend=cpu', `#v=1&own=${'a'.repeat(64)}`, 'refused'],
      ['an unknown version', '?backend=cpu', '#v=2&model=x', 'refused'],
    ];
    for (const [name, query, hash, expected] of cases) {
      errors = [];
      const p = watch(await openApp(ctx, query, hash));
      const state = await settledOrHang(p);
      const asked = state === 'ready' && !(await p.locator('#fetch-confirm').isHidden());
      const outcome = state === 'hang' ? 'hang' : state === 'error' ? 'refused' : asked ? 'asked' : 'accepted';
      const message = outcome === 'refused' ? (await p.textContent('#alert-text')).trim() : asked ? (await p.textContent('#fetch-confirm-text')).trim() : ((await p.textContent('#notice')) ?? '').trim();
      const { panic } = await snapshot(p);
      const injected = await p.evaluate(() => document.querySelectorAll('img[src="x"], #alert *:not(span):not(button), #notice *, #fetch-confirm-text *').length);
      rows.push({ kind: 'link', input: name, expected, outcome, message, panic });
      assert.equal(outcome, expected, `${name}: ${message}`);
      assert.equal(panic, null, name);
      assert.equal(injected, 0, `${name}: nothing from the link became markup`);
      assert.equal(await p.evaluate(() => window.alerted === true), false, name);
      assert.doesNotMatch(message, /<img|onerror/, name);
      assert.deepEqual(errors, [], name);
      await p.close();
    }
  });

  it('a file that fails to load leaves the running explanation, image and result alone', async () => {
    const p = watch(await openApp(ctx, '?backend=cpu&model=efficientnet_lite0&workers=1'));
    assert.equal(await settled(p), 'ready', await alertText(p));
    const outcome = await p.evaluate(async () => {
      const explained = window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg').then((m) => m && m.class, (e) => `rejected: ${e.message}`);
      await new Promise((ok) => {
        const t = setInterval(() => {
          if (document.getElementById('run-progress')?.value > 0) ok(clearInterval(t));
        }, 10);
      });
      const failed = await window.scorecam.loadImageFromBytes(new TextEncoder().encode('notes, not a picture')).then(() => 'resolved', (e) => e.message);
      const during = document.body.dataset.state;
      return { failed, during, explained: await explained, state: document.body.dataset.state };
    });
    assert.match(outcome.failed, /not an image/);
    assert.equal(outcome.during, 'error', 'the failure is shown at once');
    assert.equal(typeof outcome.explained, 'number', `the explanation in progress finished: ${outcome.explained}`);
    assert.equal(outcome.state, 'done');
    assert.match(await alertText(p), /not an image/, 'the message stays until dismissed');
    assert.deepEqual(errors, []);
    await p.close();
  });

  it('clamps ?workers=N to the memory budget, with a notice', async () => {
    const p = watch(await ctx.newPage());
    // As a device with 256 MiB (Chromium reports 0.25 to 8): a quarter of it holds one worker.
    await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 0.25 }));
    await p.goto(`${site.url}?backend=cpu&model=${MODEL}&workers=12`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    const pool = await p.evaluate(() => window.scorecam.workers());
    assert.equal(pool.size, 1);
    assert.match(await p.textContent('#notice'), /\?workers=12 asks for more CPU workers than this device's memory holds with .+ \(1\): using 1\./);
    assert.match(await p.textContent('#notice'), /CPU/, 'the backend notice stays');
    await p.close();
  });

  it('asks before fetching an image a link names on another server, naming the server', async () => {
    // A second origin (https on 127.0.0.1, against the page's localhost) that allows CORS: a
    // link's image host. Its certificate is made here (the browser ignores certificate errors).
    const tls = join(work, 'tls');
    mkdirSync(tls, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(tls, 'key.pem'), '-out', join(tls, 'cert.pem')], { stdio: 'ignore' });
    const other = await serve(join(work, 'site'), { cors: true, host: '127.0.0.1', tls: { key: readFileSync(join(tls, 'key.pem')), cert: readFileSync(join(tls, 'cert.pem')) } });
    copies.push(other.server);
    const host = new URL(other.url).host;
    const image = `${other.url}www/samples/astronaut.jpg`;
    const requests = [];
    const open = async (query, hash = '') => {
      const p = watch(await ctx.newPage());
      p.on('request', (r) => r.url().startsWith(other.url) && requests.push(r.url()));
      await p.goto(`${site.url}${query}${hash}`);
      assert.equal(await settled(p), 'ready', await alertText(p));
      await p.locator('#fetch-confirm').waitFor({ state: 'visible' });
      return p;
    };
    // ?image=: asked, named (a host on this computer is called so), fetched only after the yes.
    const p = await open(`?backend=cpu&model=${MODEL}&image=${encodeURIComponent(image)}`);
    const question = await p.textContent('#fetch-confirm-text');
    assert.ok(question.startsWith(`Load the image from ${host}, which is this computer or a device on your own network`), question);
    assert.ok(question.includes(image), question);
    await p.waitForTimeout(500);
    assert.deepEqual(requests, [], 'nothing is fetched before the visitor says yes');
    await shot(p, 'hostile-link-asks');
    await p.locator('#fetch-confirm-load').click();
    assert.equal(await settled(p), 'done', await alertText(p));
    assert.equal(await p.locator('#fetch-confirm').isHidden(), true);
    assert.deepEqual(requests, [image]);
    await p.close();
    // Plain http from another server: refused before any fetch (the CSP allows none), not asked.
    const plain = watch(await ctx.newPage());
    await plain.goto(`${site.url}?backend=cpu&model=${MODEL}&image=${encodeURIComponent(image.replace('https:', 'http:'))}`);
    assert.equal(await settled(plain), 'error');
    assert.match(await alertText(plain), /Images from other servers are loaded over https only: http:\/\/127\.0\.0\.1:\d+\/www\/samples\/astronaut\.jpg is not\./);
    assert.equal(await plain.locator('#fetch-confirm').isHidden(), true);
    await plain.close();
    // A share link's src, refused: nothing fetched, a notice, the page ready for another image.
    requests.length = 0;
    const q = await open(`?backend=cpu`, `#v=1&model=${MODEL}&src=${encodeURIComponent(image)}`);
    await q.locator('#fetch-confirm-skip').click();
    await q.waitForFunction(() => !document.getElementById('notice').hidden && /was not loaded/.test(document.getElementById('notice').textContent));
    assert.match(await q.textContent('#notice'), new RegExp(`The image from ${host.replace(/\./g, '\\.')} was not loaded\\.`));
    assert.equal(await q.evaluate(() => document.body.dataset.state), 'ready');
    assert.equal(typeof (await q.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'))).class, 'number');
    assert.deepEqual(requests, []);
    await q.close();
    // An image chosen while the question is open answers it: no.
    const r = await open(`?backend=cpu&model=${MODEL}&image=${encodeURIComponent(image)}`);
    await r.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    assert.equal(await settled(r), 'done', await alertText(r));
    assert.equal(await r.locator('#fetch-confirm').isHidden(), true);
    assert.deepEqual(requests, []);
    assert.deepEqual(errors, []);
    await r.close();
  });

  it('keeps to a CSP without unsafe-inline, WebAssembly, workers and service worker included, and refuses what it forbids', async () => {
    const p = watch(await ctx.newPage());
    await p.addInitScript(() => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
    });
    await p.goto(`${site.url}?backend=cpu&model=${MODEL}&workers=2`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    const csp = await p.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]').content);
    console.log(`  CSP as served: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'|http:|TRUNK-LOADER/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/]{43}=';/);
    assert.match(csp, /connect-src 'self' https:;/);
    assert.match(csp, /require-trusted-types-for 'script'; trusted-types scorecam/);
    // The page works under it: an explanation on a pool of two workers, the offline shell.
    assert.equal(typeof (await p.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'))).class, 'number');
    assert.equal((await p.evaluate(() => window.scorecam.workers())).size, 2);
    assert.equal(await p.evaluate(async () => (await navigator.serviceWorker.ready).active !== null), true);
    assert.deepEqual(await p.evaluate(() => window.violations), [], 'nothing the page does is refused');
    // What it forbids: an inline script, markup through innerHTML, plain http to another server.
    const refused = await p.evaluate(async () => {
      const out = {};
      try {
        const script = document.createElement('script');
        script.textContent = 'window.injected = true';
        document.head.append(script);
      } catch (e) {
        out.script = e.name;
      }
      try {
        document.getElementById('notice').innerHTML = '<img src=x onerror="window.injected = true">';
        out.html = 'set';
      } catch (e) {
        out.html = e.name;
      }
      out.fetch = await fetch('http://127.0.0.1:9/x.jpg').then(() => 'fetched', (e) => e.name);
      await new Promise((ok) => setTimeout(ok, 300));
      return { ...out, injected: window.injected === true, violations: window.violations };
    });
    assert.equal(refused.injected, false, JSON.stringify(refused));
    assert.equal(refused.html, 'TypeError', 'Trusted Types refuse a string of markup');
    assert.equal(refused.fetch, 'TypeError');
    assert.ok(refused.violations.some((v) => v.startsWith('connect-src http://127.0.0.1:9')), JSON.stringify(refused.violations));
    assert.deepEqual(errors, []);
    await p.close();
  });

  it('shows a link\'s model text back only when it is a model\'s name', async () => {
    const phish = 'Your account is locked. Call 0800 000 000 to unlock it';
    const p = watch(await openApp(ctx, `?backend=cpu&model=${encodeURIComponent(phish)}`));
    assert.equal(await settled(p), 'ready', await alertText(p));
    const notice = await p.textContent('#notice');
    assert.ok(!notice.includes('locked') && !notice.includes('0800'), notice);
    assert.match(notice, /The model this link names is not installed here; using .+\./);
    await p.goto(`${site.url}?backend=cpu&model=resnet_50.v2`);
    assert.equal(await settled(p), 'ready', await alertText(p));
    assert.match(await p.textContent('#notice'), /The model “resnet_50\.v2” is not installed here; using .+\./);
    assert.deepEqual(errors, []);
    await p.close();
  });

  it('restarts with the image itself, not the share link\'s small JPEG, even one no link can hold', async () => {
    const p = watch(await openApp(ctx, `?backend=cpu&model=${MODEL}`));
    assert.equal(await settled(p), 'ready', await alertText(p));
    // A photo larger than the link's 320 px JPEG; black and white noise (320x320 PNG), whose
    // JPEG no link holds (about 49 KB at the lowest quality tried, above 40 KB).
    const loads = {
      photo: () => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'),
      noise: async () => {
        const c = document.createElement('canvas');
        c.width = 320;
        c.height = 320;
        const g = c.getContext('2d');
        const pixels = g.createImageData(c.width, c.height);
        let x = 35;
        for (let i = 0; i < pixels.data.length; i += 4) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          pixels.data.fill(x >>> 31 ? 255 : 0, i, i + 3);
          pixels.data[i + 3] = 255;
        }
        g.putImageData(pixels, 0, 0);
        return window.scorecam.loadImageFromBytes(await new Promise((ok) => c.toBlob(ok, 'image/png')));
      },
    };
    for (const [name, load] of Object.entries(loads)) {
      await p.evaluate(load);
      const before = await p.evaluate(async () => ({
        image: window.scorecam.image(),
        link: await window.scorecam.shareLink().then(() => 'it fits', (e) => e.message),
      }));
      if (name === 'photo') assert.deepEqual(before.image, { width: 451, height: 300, bytes: 31589, source: 'url' });
      else assert.match(before.link, /does not compress small enough for a link/);
      const map = await getMap(p);
      // The restart a lost device or a panic offers.
      await Promise.all([p.waitForNavigation({ timeout: 30_000 }), p.evaluate(() => document.getElementById('alert-restart').click())]);
      assert.equal(await settled(p), 'done', await alertText(p));
      assert.deepEqual(await p.evaluate(() => window.scorecam.image()), before.image, `${name}: the same file, at full resolution`);
      const again = await getMap(p);
      assert.equal(again.class, map.class);
      assert.ok(pearson(again.map, map.map) > 0.999, `${name}: the same map`);
      assert.doesNotMatch(p.url(), /img=|src=/, 'the image is not in the link');
      // Taken once: what the restart kept is gone.
      assert.deepEqual(await p.evaluate(async () => [sessionStorage.length, await caches.has('scorecam-restart')]), [0, false]);
    }
    assert.deepEqual(errors, []);
    await p.close();
  });
  it('drops the teaching views\' superseded work silently when the model is switched', async () => {
    const p = watch(await openApp(ctx, '?backend=cpu&model=efficientnet_lite0'));
    assert.equal(await settled(p), 'ready', await alertText(p));
    await p.evaluate(() => window.scorecam.loadImageFromUrl('www/samples/chelsea.jpg'));
    // The curves take a few seconds of forward passes on every worker: switch while they run.
    const shown = await p.evaluate(async (model) => {
      window.scorecam.setTeach({ tab: 'faithful' });
      await new Promise((ok) => {
        const t = setInterval(() => {
          if (/Computing the curves: [1-9]/.test(document.getElementById('faithful-summary').textContent)) ok(clearInterval(t));
        }, 10);
      });
      const messages = [];
      new MutationObserver(() => {
        if (!document.getElementById('alert').hidden) messages.push(document.getElementById('alert-text').textContent);
      }).observe(document.getElementById('alert'), { attributes: true, childList: true, subtree: true });
      await window.scorecam.selectModel(model);
      await window.scorecam.whenTeachRendered();
      await new Promise((ok) => setTimeout(ok, 1000)); // what was in flight comes back
      return { messages, state: document.body.dataset.state, summary: document.getElementById('faithful-summary').textContent };
    }, MODEL);
    assert.deepEqual(shown.messages, [], 'no message about the superseded work');
    assert.equal(shown.state, 'done');
    assert.match(shown.summary, /Deletion AUC/, 'the new model\'s curves are drawn');
    assert.deepEqual(errors, []);
    await p.close();
  });
});
