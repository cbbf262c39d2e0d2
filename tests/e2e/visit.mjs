// A visitor's first minute on a served app, for checking what scripts/demo.sh serves: open the
// page in headless Chromium, drop a photo, wait for its explanation, then drop an ONNX model, take
// its dialog's defaults and explain the photo again; a screenshot after each, the top class and
// the time printed. Exits non-zero when a step fails.
//
//   node tests/e2e/visit.mjs [--url http://localhost:8080/] [--photo P.jpg] [--model M.onnx] [--out DIR] [--webgpu]
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launch } from './browser.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:8080/' },
    photo: { type: 'string', default: join(REPO, 'www/samples/chelsea.jpg') },
    model: { type: 'string', default: join(REPO, 'tests/fixtures/onnx/tiny_resnet/tiny_resnet.dynamo.dynamic.onnx') },
    out: { type: 'string', default: join(REPO, 'tests/e2e/out/visit') },
    webgpu: { type: 'boolean', default: false },
  },
});
const MINUTES = 10 * 60_000;
mkdirSync(args.out, { recursive: true });

const ctx = await launch({ webgpu: args.webgpu });
const page = await ctx.newPage();
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
const state = async () => {
  await page.waitForFunction(() => ['ready', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: MINUTES });
  return page.evaluate(() => document.body.dataset.state);
};
const fail = async (what) => {
  const alert = await page.locator('[role=alert]').textContent().catch(() => '');
  await page.screenshot({ path: join(args.out, 'failed.png') });
  console.error(`visit: ${what}: ${alert?.trim()}`);
  await ctx.close();
  process.exit(1);
};
const drop = (bytes, name, type) =>
  page.evaluate(({ b64, name, type }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([data], name, { type }));
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { b64: Buffer.from(bytes).toString('base64'), name, type });
const explained = async (label) => {
  const top = await page.evaluate(() => {
    const m = window.scorecam.getMap();
    return { top5: m.top5.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`), model: window.scorecam.timings().model?.name, ms: window.scorecam.timings().explain?.totalMs };
  });
  const shot = join(args.out, `${label}.png`);
  await page.screenshot({ path: shot });
  console.log(`${label}: ${top.model}: ${top.top5.slice(0, 3).join(', ')}${top.ms ? ` (${(top.ms / 1000).toFixed(1)} s)` : ''}; ${shot}`);
};

let t0 = Date.now();
await page.goto(args.url);
if ((await state()) !== 'ready') await fail('the page did not start');
console.log(`opened ${args.url} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${args.webgpu ? 'WebGPU on SwiftShader' : 'CPU backend'})`);

t0 = Date.now();
await drop(readFileSync(args.photo), basename(args.photo), 'image/jpeg');
await page.waitForFunction(() => document.body.dataset.state !== 'ready', null, { timeout: MINUTES });
if ((await state()) !== 'done') await fail('the dropped photo was not explained');
console.log(`photo explained in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await explained('photo');

t0 = Date.now();
await drop(readFileSync(args.model), basename(args.model), 'application/octet-stream');
await page.waitForSelector('#own-dialog[open] #own-details:not([hidden])', { timeout: MINUTES }).catch(() => fail('no model dialog'));
await page.screenshot({ path: join(args.out, 'model-dialog.png') });
await page.click('#own-use');
await page.waitForFunction(() => window.scorecam.timings().model?.name.startsWith('own-') && document.body.dataset.state !== 'ready', null, { timeout: MINUTES }).catch(() => fail('the dropped model did not load'));
if ((await state()) !== 'done') await fail('the photo was not explained by the dropped model');
console.log(`model imported and the photo explained in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await explained('model');
await ctx.close();
