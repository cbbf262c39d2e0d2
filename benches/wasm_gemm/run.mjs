// node run.mjs module.wasm [--ours-only] [--layers]: GMAC/s of gemm's SIMD128 kernel and ours on Lite0's and
// VGG16's GEMM shapes (out x in x pixels), the best of 7 timings of ~50 ms each, each shape
// alone (its operands hot in cache); then Lite0's 1x1 layers in a forward's order, each on its
// own buffers, as a forward meets them (mostly out of cache), and the same layers each alone, hot:
// what a forward's cold operands cost each kernel (`--layers`: each layer's GMAC/s hot).
import { readFileSync } from 'node:fs';

const { instance } = await WebAssembly.instantiate(readFileSync(process.argv[2]), {});
const { setup, run, max_diff: maxDiff, lite0_sequence: lite0Sequence, lite0_layers: lite0Layers, shape } = instance.exports;
// src/lib.rs's SHAPES, each packed into one number.
const shapes = [];
for (let i = 0, s; (s = shape(i)); i++) shapes.push([Math.floor(s / 2 ** 40), Math.floor(s / 2 ** 20) % 2 ** 20, s % 2 ** 20]);

function gmacs(kernel, m, n, k) {
  let reps = 1;
  for (;;) {
    const t = performance.now();
    run(kernel, m, n, k, reps);
    if (performance.now() - t > 50) break;
    reps *= 2;
  }
  let best = 0;
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    run(kernel, m, n, k, reps);
    best = Math.max(best, (m * n * k * reps) / ((performance.now() - t) / 1000) / 1e9);
  }
  return best;
}

const oursOnly = process.argv.includes('--ours-only');
const ratios = [];
for (const [m, k, n] of shapes) {
  setup(m, n, k);
  if (oursOnly) {
    console.log(`${`${m}x${k}x${n}`.padEnd(13)} ours ${gmacs(1, m, n, k).toFixed(1).padStart(5)} GMAC/s`);
    continue;
  }
  const [theirs, ours] = [gmacs(0, m, n, k), gmacs(1, m, n, k)];
  ratios.push(ours / theirs);
  console.log(`${`${m}x${k}x${n}`.padEnd(13)} gemm ${theirs.toFixed(1).padStart(5)}  ours ${ours.toFixed(1).padStart(5)} GMAC/s  (${(ours / theirs).toFixed(2)}x, max diff ${maxDiff().toExponential(1)})`);
}
ratios.sort((a, b) => a - b);
if (!oursOnly) console.log(`median ours/gemm: ${ratios[ratios.length >> 1].toFixed(2)}x`);

/// Milliseconds per image for Lite0's 1x1 layers in order: the best of 7 timings of 10 passes.
function sequenceMs(kernel) {
  lite0Sequence(kernel, 1, -1);
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    lite0Sequence(kernel, 10, -1);
    best = Math.min(best, (performance.now() - t) / 10);
  }
  return best;
}
/// The same layers each alone, their operands hot: the sum of each one's best of 5 timings of 20.
function hotSumMs(kernel, name) {
  let sum = 0;
  for (let layer = 0; layer < lite0Layers(); layer++) {
    const macs = lite0Sequence(kernel, 1, layer);
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      lite0Sequence(kernel, 20, layer);
      best = Math.min(best, (performance.now() - t) / 20);
    }
    if (process.argv.includes('--layers')) console.log(`  Lite0 1x1 layer ${String(layer).padStart(2)}: ${name} ${(macs / best / 1e6).toFixed(1).padStart(5)} GMAC/s hot`);
    sum += best;
  }
  return sum;
}
const kernels = oursOnly ? [['ours', 1]] : [['gemm', 0], ['ours', 1]];
console.log(`Lite0's 1x1 layers in a forward's order: ${kernels.map(([name, k]) => `${name} ${sequenceMs(k).toFixed(2)} ms`).join(', ')} per image`);
console.log(`... each alone, hot, summed: ${kernels.map(([name, k]) => `${name} ${hotSumMs(k, name).toFixed(2)} ms`).join(', ')}`);
