// Unit tests of the page's pure code (no browser): the share-link format (www/share.js), the
// CPU worker pool's size (www/workers.js) and the choice of wasm build (www/wasmbuild.js).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// www/ has no package.json, so Node would read its .js files as CommonJS; a copy beside one that
// says "module" is read as the browser reads them. (Importing share.js evaluates its imports too:
// none of them touches the DOM before it is called.)
const WWW = resolve(fileURLToPath(import.meta.url), '../../../www');
const copy = mkdtempSync(join(tmpdir(), 'scorecam-www-'));
for (const f of readdirSync(WWW)) if (f.endsWith('.js')) copyFileSync(join(WWW, f), join(copy, f));
writeFileSync(join(copy, 'package.json'), '{"type": "module"}');
const { parseShareFragment, buildShareFragment, bytesToBase64Url, base64UrlToBytes, ShareLinkError, LIMITS } = await import(pathToFileURL(join(copy, 'share.js')).href);
const { poolSize } = await import(pathToFileURL(join(copy, 'workers.js')).href);
rmSync(copy, { recursive: true }); // loaded, with everything they import

// What the page passes: the registry's in-browser methods and the colormaps.
const NAMES = { methods: ['scorecam', 'scorecam-gradcam-lib', 'gradcam', 'gradcampp'], colormaps: ['jet', 'turbo', 'viridis'] };
const parse = (hash) => parseShareFragment(hash, NAMES);

function rejects(hash, pattern) {
  assert.throws(() => parse(hash), (err) => err instanceof ShareLinkError && pattern.test(err.message) && /^This shared link is malformed: /.test(err.message));
}

describe('share links', () => {
  it('round-trip the state', () => {
    const state = { model: 'vgg_tiny', class: 285, method: 'scorecam', topk: 50, opacity: 0.35, cmap: 'turbo', view: 'side', img: bytesToBase64Url(Uint8Array.of(255, 216, 255, 0, 1, 2)) };
    const hash = buildShareFragment(state);
    assert.match(hash, /^#v=1&model=vgg_tiny&class=285&method=scorecam&topk=50&opacity=0\.35&cmap=turbo&view=side&img=/);
    assert.deepEqual(parse(hash), state);
    const src = { model: 'efficientnet_lite0', method: 'gradcampp', src: 'https://example.org/a%20cat.jpg?x=1&y=2' };
    assert.deepEqual(parse(buildShareFragment(src)), src);
  });

  it('leave out what is not set', () => {
    assert.equal(buildShareFragment({ model: 'm', class: null, topk: null, method: 'gradcam' }), '#v=1&model=m&method=gradcam');
    assert.equal(parse(''), null);
    assert.equal(parse('#'), null);
    assert.deepEqual(parse('#v=1'), {});
  });

  it('open links written with variant= as the same method', () => {
    const old = { official: 'scorecam', 'gradcam-lib': 'scorecam-gradcam-lib', gradcam: 'gradcam', gradcampp: 'gradcampp' };
    for (const [variant, method] of Object.entries(old)) {
      assert.deepEqual(parse(`#v=1&model=vgg16&class=3&variant=${variant}&opacity=0.50`), { model: 'vgg16', class: 3, method, opacity: 0.5 });
    }
  });

  it('refuse a method and a variant together, and names the page does not offer', () => {
    rejects('#v=1&method=scorecam&variant=official', /both a method and a variant/);
    rejects('#v=1&method=rise', /method is not one this page offers/); // a CLI-only method
    rejects('#v=1&method=nope', /method is not one this page offers/);
    rejects('#v=1&method=Score%20CAM', /“method” is not valid/);
    rejects('#v=1&variant=scorecam', /“variant” is not valid/);
    rejects('#v=1&cmap=hot', /colormap is not one this page offers/);
  });

  it('refuse malformed and hostile fragments', () => {
    rejects('#model=vgg16', /no version/);
    rejects('#v=2', /“v” is not valid/);
    rejects('#v=1&v=1', /“v” appears 2 times/);
    rejects('#v=1&class=1&class=2', /“class” appears 2 times/);
    rejects('#v=1&class=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E', /“class” is not valid/);
    rejects('#v=1&model=%3Cb%3E', /“model” is not valid/);
    rejects('#v=1&opacity=1.5', /“opacity” is not valid/);
    rejects('#v=1&view=grid', /“view” is not valid/);
    rejects('#v=1&topk=0', /topk must be at least 1/);
    rejects('#v=1&src=javascript%3Aalert(1)', /“src” is not valid/);
    rejects('#v=1&src=https%3A%2F%2Fa.example%2Fx.jpg&img=AAAA', /both an image and an image address/);
    rejects('#v=1&img=AAAAA', /not valid base64url/);
    rejects('#v=1&img=AA%2BA', /“img” is not valid/);
    rejects(`#v=1&img=${'A'.repeat(Math.ceil((LIMITS.sharedImageBytes * 4) / 3) + 4)}`, /image is too large/);
    rejects(`#v=1&img=${'A'.repeat(LIMITS.fragmentChars)}`, /KB long/);
  });

  it('carry a lesson: the open teaching view, its state and the hidden controls', () => {
    const state = { model: 'vgg_tiny', class: 5, method: 'scorecam', teach: { tab: 'steps', channel: 9, sort: 'contribution', n: 4 }, hide: ['input', 'classes', 'options', 'tabs'], img: 'AAAA' };
    const hash = buildShareFragment(state);
    assert.match(hash, /^#v=1&model=vgg_tiny&class=5&method=scorecam&tab=steps&ch=9&sort=contribution&n=4&hide=input%2Cclasses%2Coptions%2Ctabs&img=AAAA$/);
    assert.deepEqual(parse(hash), state);
    for (const teach of [{ tab: 'faithful', curve: 'insertion', t: 120 }, { tab: 'sanity', stage: 3, sanityMethod: 'gradcampp' }, { tab: 'camera' }, { tab: 'compare', compareSort: 'insertion' }]) {
      assert.deepEqual(parse(buildShareFragment({ teach })).teach, teach);
    }
  });

  it('refuse malformed lesson fields', () => {
    rejects('#v=1&tab=evil', /“tab” is not valid/);
    rejects('#v=1&ch=3', /names no view/);
    rejects('#v=1&tab=steps&ch=-1', /“ch” is not valid/);
    rejects('#v=1&tab=steps&n=0', /n must be at least 1/);
    rejects('#v=1&tab=steps&sort=random', /“sort” is not valid/);
    rejects('#v=1&tab=faithful&curve=sideways', /“curve” is not valid/);
    rejects('#v=1&tab=sanity&stage=1234', /“stage” is not valid/);
    rejects('#v=1&tab=sanity&sm=rise', /sanity check method is not one this page offers/);
    rejects('#v=1&tab=compare&csort=random', /“csort” is not valid/);
    rejects('#v=1&csort=seconds', /names no view/);
    rejects('#v=1&hide=input,everything', /“hide” is not valid/);
    rejects('#v=1&hide=input,input', /names a control twice/);
    rejects('#v=1&tab=steps&tab=faithful', /“tab” appears 2 times/);
  });

  it('carry any bytes as base64url', () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 131) % 256);
    const text = bytesToBase64Url(bytes);
    assert.match(text, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(base64UrlToBytes(text), bytes);
  });
});

describe('the CPU worker pool', () => {
  // The bytes a CPU worker holds the weights in, as ModelInfo.weight_bytes_on_device gives them
  // (f32 convolutions, int8 linear layers).
  const LITE0 = 14_688_000;
  const VGG16 = 182_565_952;
  it('takes one worker per core while a model copy each fits a quarter of the memory, at most 8', () => {
    assert.equal(poolSize({ cores: 2, memoryGiB: 8, weightBytes: LITE0 }), 2);
    assert.equal(poolSize({ cores: 16, memoryGiB: 8, weightBytes: LITE0 }), 8);
    assert.equal(poolSize({ cores: 8, memoryGiB: 4, weightBytes: VGG16 }), 2);
    assert.equal(poolSize({ cores: 8, memoryGiB: 8, weightBytes: VGG16 }), 4);
    assert.equal(poolSize({ cores: 8, memoryGiB: undefined, weightBytes: VGG16 }), 2, '4 GiB assumed where the browser does not say');
    assert.equal(poolSize({ cores: 4, memoryGiB: 0.5, weightBytes: VGG16 }), 1, 'never fewer than one');
    assert.equal(poolSize({ cores: 8, memoryGiB: 8, weightBytes: 553_430_176 }), 1, 'a model of f32 weights as large as VGG16');
  });
});

describe('the wasm build', () => {
  const script = readFileSync(join(WWW, 'wasmbuild.js'), 'utf8');
  const isRelaxedProbe = (bytes) => bytes.some((b, i) => b === 253 && bytes[i + 1] === 128 && bytes[i + 2] === 2);
  /// What www/wasmbuild.js names on a page at `search`, where WebAssembly.validate says `validates`
  /// of the relaxed-SIMD probe and `simd` of the SIMD128 one.
  function load(search, validates, simd = true) {
    const validate = (bytes) => (isRelaxedProbe(bytes) ? validates : simd);
    const context = { location: { search }, WebAssembly: { validate }, console: { warn: () => {} } };
    context.globalThis = context;
    runInNewContext(script, context);
    return context;
  }
  const chosen = (search, validates) => load(search, validates).scorecamWasmFile;

  it('is the relaxed-SIMD one where the probe validates, unless ?simd=simd128', () => {
    assert.equal(chosen('', true), 'scorecam_relaxed_bg.wasm');
    assert.equal(chosen('?model=vgg16', true), 'scorecam_relaxed_bg.wasm');
    assert.equal(chosen('?simd=simd128', true), 'scorecam_bg.wasm');
    assert.equal(chosen('?backend=cpu&simd=simd128', true), 'scorecam_bg.wasm');
    assert.equal(chosen('', false), 'scorecam_bg.wasm');
  });

  it('falls back to the SIMD128 build when the relaxed one fails to load, and only then', async () => {
    // `start(file, onFailed)` stands in for trunk's loader: it fails on the files in `broken`.
    const run = async (validates, broken) => {
      const context = load('', validates);
      const tried = [];
      const start = async (file, onFailed) => {
        tried.push([file, Boolean(onFailed)]);
        if (!broken.includes(file)) return `instance of ${file}`;
        const error = new Error(`${file}: 404`);
        if (onFailed) onFailed(error); // trunk's initializer calls it and resolves to the error
        return error;
      };
      const wasm = await context.scorecamLoadWasm(start);
      return { wasm: String(wasm), tried, file: context.scorecamWasmFile };
    };
    const relaxed = 'scorecam_relaxed_bg.wasm';
    const plain = 'scorecam_bg.wasm';
    assert.deepEqual(await run(true, []), { wasm: `instance of ${relaxed}`, tried: [[relaxed, true]], file: relaxed });
    assert.deepEqual(await run(true, [relaxed]), { wasm: `instance of ${plain}`, tried: [[relaxed, true], [plain, false]], file: plain });
    // Both broken: the SIMD128 build's failure is the start's (recorded by trunk's initializer).
    assert.deepEqual(await run(true, [relaxed, plain]), { wasm: `Error: ${plain}: 404`, tried: [[relaxed, true], [plain, false]], file: plain });
    // The SIMD128 build chosen: tried once, its failure recorded.
    assert.deepEqual(await run(false, [plain]), { wasm: `Error: ${plain}: 404`, tried: [[plain, false]], file: plain });
  });

  it('downloads neither build where WebAssembly SIMD is missing, and fails the start naming it', async () => {
    for (const search of ['', '?simd=simd128']) {
      const context = load(search, true, false);
      assert.equal(context.scorecamUnsupported, 'WebAssembly SIMD');
      const tried = [];
      const error = await context.scorecamLoadWasm(async (file) => tried.push(file));
      assert.deepEqual(tried, [], 'nothing is loaded');
      assert.equal(error.unsupported, 'WebAssembly SIMD');
      assert.equal(context.scorecamStartError, error, 'the start is recorded as failed');
    }
    assert.equal(load('', true).scorecamUnsupported, null);
    assert.equal(load('', false).scorecamUnsupported, null, 'SIMD128 without relaxed SIMD is enough');
    // No WebAssembly at all.
    const context = { location: { search: '' }, WebAssembly: undefined, console: { warn: () => {} } };
    context.globalThis = context;
    runInNewContext(script, context);
    assert.equal(context.scorecamUnsupported, 'WebAssembly');
  });

  it('probes SIMD128 with a module that validates where SIMD does', () => {
    const probes = [];
    const context = { location: { search: '' }, WebAssembly: { validate: (bytes) => (probes.push(new Uint8Array(bytes)), WebAssembly.validate(bytes)) } };
    context.globalThis = context;
    runInNewContext(script, context);
    const simd = probes.find((p) => !isRelaxedProbe(p));
    assert.equal(WebAssembly.validate(simd), true, 'Node has SIMD128');
    assert.equal(context.scorecamUnsupported, null);
    // The same module with its one SIMD instruction (0xfd 0x0f, i8x16.splat) made unknown is refused.
    const broken = simd.slice();
    const splat = broken.findIndex((b, i) => b === 253 && broken[i + 1] === 15);
    broken[splat + 1] = 250;
    assert.equal(WebAssembly.validate(broken), false);
  });

  it('probes with a module that needs relaxed SIMD and nothing else', () => {
    // Node 20 validates relaxed SIMD only behind a flag: here the probe is refused, and the same
    // module with the plain i8x16.swizzle in place of i8x16.relaxed_swizzle is accepted.
    const context = { location: { search: '' }, WebAssembly: { validate: (bytes) => ((context.probes ??= []).push(bytes), WebAssembly.validate(bytes)) } };
    context.globalThis = context;
    runInNewContext(script, context);
    const probe = new Uint8Array(context.probes.at(-1));
    const relaxedSwizzle = probe.findIndex((b, i) => b === 253 && probe[i + 1] === 128 && probe[i + 2] === 2);
    assert.ok(relaxedSwizzle > 0);
    const plain = [...probe.slice(0, relaxedSwizzle), 253, 14, 11];
    plain[19 + 1] -= 1; // the code section's size
    plain[19 + 3] -= 1; // the function body's size
    assert.equal(WebAssembly.validate(probe), false);
    assert.equal(WebAssembly.validate(new Uint8Array(plain)), true);
  });
});
