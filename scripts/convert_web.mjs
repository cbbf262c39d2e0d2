// `scorecam convert` for a machine that has the app's wasm build but not the native CLI: the
// README's first command (scripts/demo.sh) converts EfficientNet-Lite0's weights with the wasm
// core it has just built, instead of spending 25 minutes on a native build it needs for nothing
// else. The same core function (convert::convert_state_dict) as the CLI's, so the same bytes
// (tests/e2e/unit.test.mjs checks them against the CLI's file).
//
//   node scripts/convert_web.mjs SOURCE.pth --out www/models/NAME.safetensors [--dist dist]
//
// Writes NAME.safetensors and NAME.json beside each other, rewrites the folder's index.json, and
// copies the three files into DIST/www/models too (the built site took its copy of www/ before
// the model existed).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const out = opt('--out', null);
const dist = resolve(opt('--dist', 'dist'));
const [source] = args;
if (!source || !out || !out.endsWith('.safetensors')) {
  console.error('usage: node scripts/convert_web.mjs SOURCE.pth --out DIR/NAME.safetensors [--dist dist]');
  process.exit(2);
}

const glue = await import(pathToFileURL(join(dist, 'scorecam.js')).href);
glue.initSync({ module: readFileSync(join(dist, 'scorecam_bg.wasm')) });

const dir = dirname(resolve(out));
const stem = basename(out, '.safetensors');
let converted;
try {
  converted = glue.convertStateDict(readFileSync(source), source, `${stem}.safetensors`);
} catch (e) {
  console.error(`convert_web: ${e.message ?? e}`);
  process.exit(1);
}
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${stem}.safetensors`), converted.weights);
writeFileSync(join(dir, `${stem}.json`), converted.manifest);
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => [basename(f, '.json'), readFileSync(join(dir, f), 'utf8')]);
writeFileSync(join(dir, 'index.json'), glue.modelIndex(files));
console.log(`${converted.arch} -> ${join(dir, `${stem}.safetensors`)} (${converted.weights.length} bytes) and ${stem}.json; index.json updated`);

// The built site's copy of the app's models folder.
const models = resolve(dirname(fileURLToPath(import.meta.url)), '../www/models');
const site = join(dist, 'www/models');
if (dir === models && existsSync(join(dist, 'index.html'))) {
  mkdirSync(site, { recursive: true });
  for (const f of [`${stem}.safetensors`, `${stem}.json`, 'index.json']) copyFileSync(join(dir, f), join(site, f));
}
