// A page worker's wasm memory, in Node: the core's Session loads a model, forwards an image, runs
// a Score-CAM at the page's batch of 4 and a Grad-CAM twice, and the size of its
// WebAssembly.Memory is printed after each step (wasm memory grows and never shrinks: what a
// worker holds). For docs/benchmarks.md, not a test:
//
//   node --experimental-wasm-relaxed-simd tests/e2e/wasm_memory.mjs --dist DIST --model DIST/www/models/vgg16.json
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: join(REPO, 'dist') },
    wasm: { type: 'string', default: 'scorecam_relaxed_bg.wasm' },
    model: { type: 'string', default: join(REPO, 'www/models/efficientnet_lite0.json') },
  },
});
const glue = await import(pathToFileURL(join(resolve(args.dist), 'scorecam.js')).href);
const wasm = glue.initSync({ module: readFileSync(join(resolve(args.dist), args.wasm)) });
const mib = () => `${(wasm.memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB`;
const manifest = readFileSync(args.model, 'utf8');
const weights = readFileSync(join(dirname(resolve(args.model)), JSON.parse(manifest).weights.file));
const session = await glue.Session.start('cpu');
const info = session.loadModel(manifest, weights);
console.log(`loaded: ${mib()} (${info.device_weights}, ${info.weight_bytes_on_device} bytes of weights)`);
const rgba = new Uint8Array(224 * 224 * 4).map((_, i) => (i * 37) % 251);
await session.setImage(rgba, 224, 224);
console.log(`after a forward: ${mib()}`);
let t = performance.now();
await session.explain({ class: null, method: 'scorecam', options: { batch_size: 4, top_k: 64 } }, () => true);
console.log(`after a Score-CAM (64 channels): ${mib()}, ${((performance.now() - t) / 1000).toFixed(2)} s`);
for (const which of ['first', 'second']) {
  t = performance.now();
  await session.explain({ class: null, method: 'gradcam', options: {} }, () => true);
  console.log(`after the ${which} Grad-CAM: ${mib()}, ${((performance.now() - t) / 1000).toFixed(2)} s`);
}
