// What the teaching views cost on this machine: opens the built app (dist/) in headless Chromium
// on the CPU backend (or WebGPU with --webgpu), explains a photo with EfficientNet-Lite0, then opens
// each view and times it. Prints a Markdown table (docs/benchmarks.md); --shots DIR keeps a
// screenshot of each view.
//
//   node tests/e2e/teach_cost.mjs [--model efficientnet_lite0] [--image www/samples/chelsea.jpg]
//        [--sanity-scorecam] [--shots DIR] [--webgpu]
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FAKE_CAMERA_FLAGS, launch } from './browser.mjs';
import { serve } from './serve.mjs';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'efficientnet_lite0' },
    image: { type: 'string', default: 'www/samples/chelsea.jpg' },
    'sanity-scorecam': { type: 'boolean', default: false },
    shots: { type: 'string' },
    webgpu: { type: 'boolean', default: false },
  },
});

const work = mkdtempSync(join(tmpdir(), 'scorecam-teach-'));
cpSync(join(REPO, 'dist'), join(work, 'site'), { recursive: true });
const site = await serve(join(work, 'site'), { host: 'localhost' });
const ctx = await launch({ webgpu: opts.webgpu, extra: FAKE_CAMERA_FLAGS });
const page = await ctx.newPage();
page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
const settled = () => page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: 900_000 });
const rows = [];
const row = (view, ms, forwards, note = '') => rows.push(`| ${view} | ${(ms / 1000).toFixed(2)} s | ${forwards} | ${note} |`);
const shot = async (name) => opts.shots && page.locator('#teach').screenshot({ path: join(opts.shots, `${name}.png`) });
const open = async (tab, patch = {}) => {
  const t0 = Date.now();
  await page.evaluate(({ tab, patch }) => window.scorecam.setTeach({ tab, ...patch }), { tab, patch });
  await page.evaluate(() => window.scorecam.whenTeachRendered());
  return Date.now() - t0;
};

await page.goto(`${site.url}?model=${opts.model}${opts.webgpu ? '' : '&backend=cpu'}`);
await settled();
const t0 = Date.now();
await page.evaluate((url) => window.scorecam.loadImageFromUrl(url), opts.image);
const explainMs = Date.now() - t0;
const info = await page.evaluate(async () => ({ backend: window.scorecam.backend().name, workers: (await window.scorecam.workers()).size, channels: window.scorecam.channels(), map: window.scorecam.getMap() }));
const scored = info.channels.filter((c) => c.score !== null).length;
row('(the explanation itself)', explainMs, `${scored} masked`, `${info.map.name}, ${info.backend}, ${info.workers} worker(s)`);

const steps = await page.evaluate(async () => {
  performance.clearMarks('scorecam:thumbnails');
  const t = performance.now();
  await window.scorecam.setTeach({ tab: 'steps' });
  const done = performance.now() - t;
  return { done, thumbs: performance.getEntriesByName('scorecam:thumbnails')[0].startTime - t };
});
let ms;
row('Step by step', steps.done, 0, `${info.channels.length} thumbnails, the first after ${(steps.thumbs / 1000).toFixed(2)} s; all from data the explanation computed`);
await shot('steps');
const clickMs = await page.evaluate(async () => {
  const t = performance.now();
  await window.scorecam.setTeach({ channel: window.scorecam.channels().find((c) => c.score !== null).channel });
  return performance.now() - t;
});
row('… another channel', clickMs, 0, 'its mask and masked input (one upsample, no forward)');
const buildMs = await page.evaluate(async () => {
  const t = performance.now();
  await window.scorecam.setTeach({ n: 10 });
  return performance.now() - t;
});
row('… build-up slider, n = 10', buildMs, 0, 'a weighted sum in the core');
await page.evaluate(() => window.scorecam.setTeach({ n: null }));

ms = await open('gradients');
row('Why not gradients', ms, '0 (2 head passes and backward)', 'Grad-CAM and Grad-CAM++ from the stored activations');
await shot('gradients');

const faithful = await page.evaluate(async () => {
  const t = performance.now();
  let first = null;
  const poll = setInterval(() => {
    if (first === null && /Computing the curves: [1-9]/.test(document.getElementById('faithful-summary').textContent)) first = performance.now() - t;
  }, 20);
  await window.scorecam.setTeach({ tab: 'faithful' });
  clearInterval(poll);
  const c = await window.scorecam.curves();
  return { ms: performance.now() - t, first, n: c.deletion.curve.length, del: c.deletion.auc, ins: c.insertion.auc };
});
row('Is the map faithful?', faithful.ms, `${2 * faithful.n} + 2`, `first points drawn after ${(faithful.first / 1000).toFixed(2)} s; deletion AUC ${faithful.del.toFixed(4)}, insertion ${faithful.ins.toFixed(4)}`);
await page.evaluate(() => window.scorecam.setTeach({ t: 40 }));
await shot('faithful');

ms = await open('sanity', { stage: 1, sanityMethod: 'gradcam' });
row('Sanity check, one stage (Grad-CAM)', ms, '2 (+ head backward)', 'stages 0 and 1: the model rebuilt from its int8 file, the top layer random');
ms = await open('sanity', { stage: 2 });
row('… next stage (Grad-CAM)', ms, '1 (+ head backward)', '');
if (opts['sanity-scorecam']) {
  ms = await open('sanity', { stage: 1, sanityMethod: 'scorecam' });
  row('Sanity check, one stage (Score-CAM)', ms, `about 2 x ${scored}`, 'stages 0 and 1, each a full Score-CAM, on the lead worker alone');
}
await shot('sanity');

await page.evaluate(() => window.scorecam.setTeach({ tab: 'camera' }));
await page.locator('#camera-start').click();
await page.waitForFunction(() => /frame 1\b/.test(document.getElementById('camera-status').textContent), null, { timeout: 300_000 });
const c0 = Date.now();
const f1 = Number(/frame (\d+)/.exec(await page.textContent('#camera-status'))[1]);
await page.waitForTimeout(10_000);
const f2 = Number(/frame (\d+)/.exec(await page.textContent('#camera-status'))[1]);
const fps = (f2 - f1) / ((Date.now() - c0) / 1000);
row('Live camera (Grad-CAM per frame)', 1000 / Math.max(fps, 1e-9), '1 per frame (+ head backward)', `${fps.toFixed(2)} frames/s (Chromium's fake camera)`);
await page.locator('#camera-freeze').click();
await settled();

console.log(`Teaching views, ${opts.model}, ${info.backend} backend (${info.workers} worker(s)), ${opts.image}\n`);
console.log('| view | time | extra forward passes | |');
console.log('|---|---:|---:|---|');
console.log(rows.join('\n'));
await ctx.close();
site.server.close();
