// Times the core's heatmap colouring as the page's draw() calls it: renderHeatmap of a 224 x 224
// map onto a 448 x 336 canvas (the page's display size for a 4:3 photo), 20 calls per colormap.
//   node tests/e2e/render_bench.mjs [--dist dist] [--wasm scorecam_bg.wasm]

import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: { dist: { type: 'string', default: join(REPO, 'dist') }, wasm: { type: 'string', default: 'scorecam_bg.wasm' } },
});
// trunk's glue is an ES module named .js: Node imports it as one from a copy named .mjs.
const tmp = mkdtempSync(join(tmpdir(), 'scorecam-render-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
cpSync(join(args.dist, 'scorecam.js'), join(tmp, 'scorecam.mjs'));
const glue = await import(pathToFileURL(join(tmp, 'scorecam.mjs')).href);
glue.initSync({ module: readFileSync(join(args.dist, args.wasm)) });

const map = new Float32Array(224 * 224).map((_, i) => (Math.sin(i * 0.001) + 1) / 2);
for (const cmap of ['jet', 'turbo', 'viridis']) {
  glue.renderHeatmap(map, 224, 448, 336, cmap);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) glue.renderHeatmap(map, 224, 448, 336, cmap);
  console.log(`${cmap}: ${((performance.now() - t0) / 20).toFixed(2)} ms per call`);
}
