// Unit tests of the page's pure code (no browser): the share-link format (www/share.js), the
// CPU worker pool's size (www/workers.js), the choice of wasm build (www/wasmbuild.js) and the
// image header reader (www/imageheader.js).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createContext, runInContext, runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// www/ has no package.json, so Node would read its .js files as CommonJS; a copy beside one that
// says "module" is read as the browser reads them. (Importing share.js evaluates its imports too:
// none of them touches the DOM before it is called.)
const WWW = resolve(fileURLToPath(import.meta.url), '../../../www');
const HOSTILE = resolve(fileURLToPath(import.meta.url), '../../fixtures/hostile');
const copy = mkdtempSync(join(tmpdir(), 'scorecam-www-'));
for (const f of readdirSync(WWW)) if (f.endsWith('.js')) copyFileSync(join(WWW, f), join(copy, f));
writeFileSync(join(copy, 'package.json'), '{"type": "module"}');
const { parseShareFragment, buildShareFragment, bytesToBase64Url, base64UrlToBytes, ShareLinkError, LIMITS, missingModelNotice } = await import(pathToFileURL(join(copy, 'share.js')).href);
const { needsConsent, isLocalHost } = await import(pathToFileURL(join(copy, 'consent.js')).href);
const { poolSize, poolSizeFor } = await import(pathToFileURL(join(copy, 'workers.js')).href);
const { imageSize, ImageHeaderError } = await import(pathToFileURL(join(copy, 'imageheader.js')).href);
rmSync(copy, { recursive: true }); // loaded, with everything they import

/// A small seeded generator (mulberry32), so a failing case can be run again.
function seeded(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

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
    for (const teach of [{ tab: 'faithful', curve: 'insertion', t: 120 }, { tab: 'sanity', stage: 3, sanityMethod: 'gradcampp' }, { tab: 'camera' }, { tab: 'compare', compareSort: 'insertion' }, { tab: 'compare', compareSort: 'drop', compareCurves: 'full' }]) {
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
    rejects('#v=1&tab=compare&ccurves=fine', /“ccurves” is not valid/);
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

describe('share and lesson links, by seeded property tests', () => {
  const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const text = (rnd, alphabet, min, max) => Array.from({ length: min + rnd.int(max - min + 1) }, () => alphabet[rnd.int(alphabet.length)]).join('');
  const decimals = (rnd, digits, max, signed) => {
    const k = rnd.int(max * 10 ** digits) * (signed && rnd.next() < 0.5 ? -1 : 1);
    return k === 0 ? 0 : k / 10 ** digits;
  };

  /// A valid state of every kind the page writes: an installed or own model, a share image or an
  /// address, a lesson's view and hidden controls, each field present or not.
  function randomState(rnd) {
    const s = {};
    const maybe = (p = 0.5) => rnd.next() < p;
    if (maybe(0.25)) {
      const own = { id: text(rnd, '0123456789abcdef', 64, 64), file: `${text(rnd, `${ALNUM} ._()+-`, 1, 110)}.${rnd.pick(['onnx', 'pth', 'pt', 'safetensors'])}` };
      if (maybe()) own.layer = text(rnd, Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)), 1, 200);
      if (maybe()) own.inputSize = 8 + rnd.int(1017);
      if (maybe()) own.mean = [0, 1, 2].map(() => decimals(rnd, 6, 999, true));
      if (maybe()) own.std = [0, 1, 2].map(() => decimals(rnd, 6, 999, false) || 0.5);
      s.own = own;
    } else if (maybe(0.9)) {
      s.model = text(rnd, `${ALNUM}_.-`, 1, 64);
    }
    if (maybe()) s.class = rnd.int(100_000);
    if (maybe()) s.method = rnd.pick(NAMES.methods);
    if (maybe()) s.topk = 1 + rnd.int(999_999);
    if (maybe()) s.opacity = rnd.int(101) / 100;
    if (maybe()) s.cmap = rnd.pick(NAMES.colormaps);
    if (maybe()) s.view = rnd.pick(['overlay', 'side']);
    if (maybe()) {
      const teach = { tab: rnd.pick(['steps', 'gradients', 'faithful', 'sanity', 'camera', 'compare']) };
      if (maybe()) teach.channel = rnd.int(100_000);
      if (maybe()) teach.sort = rnd.pick(['score', 'contribution', 'channel']);
      if (maybe()) teach.n = 1 + rnd.int(99_999);
      if (maybe()) teach.curve = rnd.pick(['deletion', 'insertion']);
      if (maybe()) teach.t = rnd.int(100_000);
      if (maybe()) teach.stage = rnd.int(1000);
      if (maybe()) teach.sanityMethod = rnd.pick(NAMES.methods);
      if (maybe()) teach.compareSort = rnd.pick(['method', 'deletion', 'insertion', 'drop', 'seconds', 'forwards']);
      if (maybe()) teach.compareCurves = rnd.pick(['quick', 'full']);
      s.teach = teach;
    }
    if (maybe(0.3)) {
      const all = ['input', 'classes', 'options', 'tabs'];
      s.hide = all.filter(() => maybe()).sort(() => rnd.next() - 0.5);
      if (!s.hide.length) s.hide = [rnd.pick(all)];
    }
    if (maybe(0.3)) {
      s.img = bytesToBase64Url(Uint8Array.from({ length: 1 + rnd.int(3000) }, () => rnd.int(256)));
    } else if (maybe(0.3)) {
      s.src = `${rnd.pick(['http', 'https'])}://${text(rnd, 'abcdefghijklmnopqrstuvwxyz0123456789', 1, 20)}.${rnd.pick(['org', 'example', 'test'])}${rnd.pick(['', ':8080'])}/${text(rnd, `${ALNUM}-._~/?&=#%+:@!$'()*,;`, 0, 300)}`;
    }
    return s;
  }

  const malformed = (err) => err instanceof ShareLinkError && /^This shared link is malformed: .+\. Drop an image to start afresh\.$/s.test(err.message);

  it('parse what they write back to the same state, for any state the page writes', () => {
    const rnd = seeded(3501);
    for (let i = 0; i < 5000; i++) {
      const state = randomState(rnd);
      const hash = buildShareFragment(state);
      let parsed;
      try {
        parsed = parse(hash);
      } catch (err) {
        assert.fail(`case ${i}: ${err.message}\n${hash}`);
      }
      assert.deepEqual(parsed, state, `case ${i}: ${hash}`);
      assert.deepEqual(parse(buildShareFragment(parsed)), state, `case ${i}: written again`);
    }
  });

  it('only ever throw ShareLinkError, with its message, on mutated and random fragments', () => {
    const rnd = seeded(3502);
    const JUNK = ['&', '=', '%', '%2', '%FF', '%ED%A0%80', '%00', '#', '+', ',', ';', '\u0000', '\ud800', '😀', '\u202e', ' ', '\n', 'v=1', '&v=1', '&v=2', '&class=', '&img=', '&src=javascript:alert(1)', '&own=', '&tab=steps', '&hide=input', '&hide=', '&mean=1,2', '&std=0,0,0', '&size=99999', '&sm=rise', '&__proto__=1', '&constructor=x'];
    const KEYS = ['v', 'model', 'class', 'method', 'variant', 'topk', 'opacity', 'cmap', 'view', 'img', 'src', 'tab', 'ch', 'sort', 'n', 'curve', 't', 'stage', 'sm', 'hide', 'own', 'ofile', 'layer', 'size', 'mean', 'std'];
    let thrown = 0;
    let parsed = 0;
    for (let i = 0; i < 20_000; i++) {
      let hash;
      if (i % 5 === 0) {
        hash = `#${text(rnd, `${ALNUM}&=%#+,.-_~:/ \u00e9\ud83d`, 0, 200)}`;
      } else {
        hash = buildShareFragment(randomState(rnd));
        for (let k = 1 + rnd.int(4); k > 0; k--) {
          const at = rnd.int(hash.length + 1);
          switch (rnd.int(5)) {
            case 0: hash = hash.slice(0, at) + rnd.pick(JUNK) + hash.slice(at); break;
            case 1: hash = hash.slice(0, at) + hash.slice(at + 1 + rnd.int(20)); break;
            case 2: hash = `${hash.slice(0, at)}${String.fromCharCode(rnd.int(0x3000))}${hash.slice(at + 1)}`; break;
            case 3: hash += `&${rnd.pick(KEYS)}=${encodeURIComponent(text(rnd, `${ALNUM}-.,_ <>"'`, 0, 12))}`; break;
            default: hash = hash.slice(0, at) + hash.slice(rnd.int(hash.length), rnd.int(hash.length)) + hash.slice(at);
          }
        }
      }
      try {
        const state = parse(hash);
        assert.ok(state === null || typeof state === 'object', hash);
        parsed += 1;
      } catch (err) {
        assert.ok(malformed(err), `case ${i}: ${err?.constructor?.name}: ${err?.message}\n${JSON.stringify(hash)}`);
        thrown += 1;
      }
    }
    assert.ok(thrown > 1000 && parsed > 1000, `both outcomes exercised (${thrown} refused, ${parsed} parsed)`);
    // Oversized fragments, at and past the limit.
    for (const n of [LIMITS.fragmentChars - 10, LIMITS.fragmentChars + 1]) {
      try {
        parse(`#v=1&img=${'A'.repeat(n)}`);
      } catch (err) {
        assert.ok(malformed(err), err.message);
      }
    }
  });
});

describe('what a link may make the page say or fetch', () => {
  it('names a missing model only when the link holds a plain model name', () => {
    assert.equal(missingModelNotice('resnet_50.v2-int8', 'VGG16'), 'The model “resnet_50.v2-int8” is not installed here; using VGG16.');
    for (const hostile of ['Your session expired: call 0800 123 456', 'vgg16<script>', `a${'b'.repeat(64)}`, '', 'vgg16\u202eexe', 'é']) {
      assert.equal(missingModelNotice(hostile, 'VGG16'), 'The model this link names is not installed here; using VGG16.', hostile);
    }
  });

  it('asks before fetching from any origin but the page’s own, and calls local hosts so', () => {
    const page = 'https://scorecam.example/app/?image=x';
    assert.equal(needsConsent('www/samples/chelsea.jpg', page), false);
    assert.equal(needsConsent('https://scorecam.example/other.jpg', page), false);
    for (const url of ['https://images.example/cat.jpg', 'https://scorecam.example:444/x.jpg', 'https://127.0.0.1/', 'https://[::1]:8080/x', 'https://router/']) {
      assert.equal(needsConsent(url, page), true, url);
    }
    // Not https from another server: refused with its own message, never asked about.
    for (const url of ['http://scorecam.example/x.jpg', 'http://127.0.0.1/', 'http://router/', 'javascript:alert(1)', 'data:image/png;base64,AAAA', 'file:///etc/passwd', 'https://[bad']) {
      assert.equal(needsConsent(url, page), false, url);
    }
    assert.equal(needsConsent('http://localhost:8080/x.jpg', 'http://localhost:8080/'), false, 'the page’s own origin, over http');
    for (const host of ['localhost', 'a.localhost', '127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '[::1]', '[fd00::1]', '[fe80::1]', 'router', 'printer.local', 'nas.lan', 'box.home.arpa']) {
      assert.equal(isLocalHost(host), true, host);
    }
    for (const host of ['example.org', '8.8.8.8', '172.32.0.1', '192.169.0.1', '[2001:db8::1]', 'images.example']) assert.equal(isLocalHost(host), false, host);
    // As the URL parser writes hosts: 0x7f.1 is 127.0.0.1.
    assert.equal(isLocalHost(new URL('http://0x7f.1/').hostname), true);
  });
});

describe('the service worker (offline shell)', () => {
  const SCOPE = 'https://app.example/scorecam/';

  /// www/sw.js in a context of its own, with Cache Storage, fetch and the worker's events faked:
  /// `put` (key, response) replaces Cache.put, `names` are the caches that exist.
  function serviceWorker({ put = async () => {}, names = [] } = {}) {
    const listeners = {};
    const stored = new Map();
    const deleted = [];
    const warnings = [];
    const cache = { add: async () => {}, put: async (key, res) => { await put(key, res); stored.set(String(key), res); } };
    const context = createContext({
      URL, Set, Promise, decodeURIComponent,
      console: { warn: (m) => warnings.push(m), log() {} },
      importScripts() { context.self.scorecamWasmFile = 'scorecam_relaxed_bg.wasm'; },
      caches: { open: async () => cache, keys: async () => names, delete: async (n) => deleted.push(n) > 0, match: async (k) => stored.get(String(k)) },
      fetch: async () => ({ ok: true, type: 'basic', clone() { return this; } }),
      Response: { error: () => 'network error' },
    });
    context.self = { addEventListener: (t, f) => { listeners[t] = f; }, registration: { scope: SCOPE }, location: { origin: new URL(SCOPE).origin }, clients: { claim: async () => {} }, skipWaiting: async () => {} };
    runInContext(readFileSync(join(WWW, 'sw.js'), 'utf8'), context);
    /// A GET of `url`: {answered: whether the worker answers it, response, waits (waitUntil's promises)}.
    async function get(url) {
      const waits = [];
      let response = null;
      listeners.fetch({ request: { method: 'GET', url }, respondWith: (p) => { response = p; }, waitUntil: (p) => waits.push(p) });
      const out = { answered: response !== null, response: await response, waits };
      await Promise.all(waits.map((p) => Promise.resolve(p)));
      return out;
    }
    return { context, listeners, stored, deleted, warnings, get };
  }

  it('keeps one copy of the page whatever its query, and nothing that is not the shell', async () => {
    const sw = serviceWorker();
    for (let i = 0; i < 50; i++) {
      const r = await sw.get(`${SCOPE}?image=${encodeURIComponent(`https://images.example/${i}.jpg`)}&model=vgg16#v=1&class=${i}`);
      assert.equal(r.answered, true);
    }
    await sw.get(`${SCOPE}index.html?x=1`);
    await sw.get(`${SCOPE}www/app.js?v=2`);
    await sw.get(`${SCOPE}www/views/steps.js`);
    await sw.get(`${SCOPE}www/models/vgg16.json`);
    await sw.get(`${SCOPE}www/samples/chelsea.jpg`);
    for (const url of [`${SCOPE}www/models/vgg16.safetensors`, `${SCOPE}notes.txt`, `${SCOPE}www/%E0%A4%A`, 'https://app.example/other/app.js', 'https://images.example/cat.jpg']) {
      assert.equal((await sw.get(url)).answered, false, url);
    }
    assert.deepEqual([...sw.stored.keys()].sort(), [SCOPE, `${SCOPE}www/app.js`, `${SCOPE}www/models/vgg16.json`, `${SCOPE}www/samples/chelsea.jpg`, `${SCOPE}www/views/steps.js`]);
  });

  it('precaches every module of the page', () => {
    const precache = runInContext('PRECACHE', serviceWorker().context);
    const modules = [...readdirSync(WWW).filter((f) => f.endsWith('.js') && f !== 'sw.js' && f !== 'initializer.js').map((f) => `www/${f}`),
      ...readdirSync(join(WWW, 'views')).map((f) => `www/views/${f}`)];
    for (const m of modules) assert.ok(precache.includes(m), `${m} is not precached`);
  });

  it('deletes older versions of its cache on activate, and no other cache', async () => {
    const current = runInContext('SHELL', serviceWorker().context);
    const sw = serviceWorker({ names: ['scorecam-shell-v1', 'scorecam-shell-v5', current, 'scorecam-models-v1', 'scorecam-own-v1', 'other-app'] });
    let done;
    sw.listeners.activate({ waitUntil: (p) => { done = p; } });
    await done;
    assert.deepEqual(sw.deleted, ['scorecam-shell-v1', 'scorecam-shell-v5']);
  });

  it('answers from the network when a copy cannot be kept, and says so', async () => {
    const quota = Object.assign(new Error('Quota exceeded.'), { name: 'QuotaExceededError' });
    const sw = serviceWorker({ put: async () => { throw quota; } });
    const r = await sw.get(`${SCOPE}www/app.js`);
    assert.equal(r.response.ok, true);
    assert.equal(r.waits.length, 1, 'the put is awaited (waitUntil), so its failure is handled');
    await assert.doesNotReject(r.waits[0]);
    assert.match(sw.warnings.join('\n'), /www\/app\.js not cached \(QuotaExceededError: Quota exceeded\.\)/);
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

  it('gives ?workers=N what the memory budget allows, and says so when that is less', () => {
    const vgg = { name: 'vgg16', display_name: 'VGG16', weight_bytes_on_device: VGG16 };
    const lite0 = { name: 'efficientnet_lite0', display_name: 'EfficientNet-Lite0', weight_bytes_on_device: LITE0 };
    assert.deepEqual(poolSizeFor(vgg, 16, { memoryGiB: 8 }), { size: 4, notice: "?workers=16 asks for more CPU workers than this device's memory holds with VGG16 (4): using 4." });
    assert.deepEqual(poolSizeFor(vgg, 3, { memoryGiB: 8 }), { size: 3, notice: null }, 'more than the cores is allowed where memory holds it');
    assert.deepEqual(poolSizeFor(lite0, 40, { memoryGiB: 8 }), { size: 16, notice: '?workers=40 asks for more CPU workers than the page runs (16): using 16.' });
    assert.deepEqual(poolSizeFor(lite0, -3, { memoryGiB: 8 }), { size: 1, notice: null });
    assert.deepEqual(poolSizeFor(lite0, null, { cores: 2, memoryGiB: 8 }), { size: 2, notice: null }, 'no request: poolSize');
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

// The README's first command converts Lite0's weights with the app's wasm in node
// (scripts/convert_web.mjs) instead of a native build: the file must be the CLI's, byte for byte.
describe('scripts/convert_web.mjs', () => {
  const ROOT = resolve(WWW, '..');
  const wasm = join(ROOT, 'dist/scorecam_bg.wasm');
  const pth = join(ROOT, process.env.SCORECAM_DATA_DIR ?? '.data', 'efficientnet_lite0.pth');
  const bin = process.env.SCORECAM_BIN;
  const ready = existsSync(wasm) && existsSync(pth) && bin && existsSync(bin);
  it('writes the same Lite0 files as `scorecam convert`', { skip: ready ? false : 'needs dist/ (scripts/build_web.sh), .data/efficientnet_lite0.pth and $SCORECAM_BIN' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorecam-convert-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts/convert_web.mjs'), pth, '--out', join(dir, 'web/efficientnet_lite0.safetensors'), '--dist', join(ROOT, 'dist')]);
      execFileSync(bin, ['convert', pth, '--out', join(dir, 'cli/efficientnet_lite0.safetensors')]);
      for (const f of ['efficientnet_lite0.safetensors', 'efficientnet_lite0.json', 'index.json']) {
        assert.ok(readFileSync(join(dir, 'web', f)).equals(readFileSync(join(dir, 'cli', f))), `${f} differs`);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
  it('refuses a file that is not a state dict, with the core\'s message', { skip: existsSync(wasm) ? false : 'needs dist/' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorecam-convert-'));
    try {
      writeFileSync(join(dir, 'junk.pth'), 'not a checkpoint');
      const run = spawnSync(process.execPath, [join(ROOT, 'scripts/convert_web.mjs'), join(dir, 'junk.pth'), '--out', join(dir, 'x.safetensors'), '--dist', join(ROOT, 'dist')], { encoding: 'utf8' });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^convert_web: .+/);
      assert.ok(!existsSync(join(dir, 'x.safetensors')));
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('image headers', () => {
  // The corpus's files (tests/fixtures/hostile/make.py): the size each declares, as Pillow wrote it.
  const declared = {
    'bomb_20000x20000.png': ['PNG', 20000, 20000],
    'bomb_header_50000x50000.png': ['PNG', 50000, 50000],
    'bomb_header_65500x65500.jpg': ['JPEG', 65500, 65500],
    'bomb_header_65535x65535.gif': ['GIF', 65535, 65535],
    'bomb_header_16384x16384.webp': ['WebP', 16384, 16384],
    'bomb_header_30000x30000.bmp': ['BMP', 30000, 30000],
    'zero_width.png': ['PNG', 0, 64],
    'png_named.jpg': ['PNG', 96, 64],
    'cmyk.jpg': ['JPEG', 96, 64],
    'sixteen_bit.png': ['PNG', 96, 64],
    'animated.gif': ['GIF', 96, 64],
    'animated.webp': ['WebP', 96, 64],
    'lossy.webp': ['WebP', 96, 64],
    'plain.bmp': ['BMP', 96, 64],
    'photo.avif': ['AVIF', 96, 64],
    'thin_1x4000.png': ['PNG', 1, 4000],
    'exif_orientation5.jpg': ['JPEG', 96, 64], // as stored: the orientation is applied when drawn
    'truncated_half.jpg': ['JPEG', 96, 64], // the frame header is in the first half
  };
  const read = (name) => new Uint8Array(readFileSync(join(HOSTILE, name)));

  it('gives the size each format declares, before any decoding', () => {
    for (const [name, [format, width, height]] of Object.entries(declared)) {
      assert.deepEqual(imageSize(read(name)), { format, width, height }, name);
    }
    const photo = new Uint8Array(readFileSync(join(WWW, 'samples/chelsea.jpg')));
    assert.deepEqual(imageSize(photo), { format: 'JPEG', width: 451, height: 300 });
  });

  it('finds a JPEG’s frame after large metadata segments', () => {
    const app = (n) => [0xff, 0xe1, (n + 2) >> 8, (n + 2) & 255, ...new Uint8Array(n)];
    const sof = [0xff, 0xc2, 0, 17, 8, 0x01, 0x2c, 0x02, 0x58, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
    const bytes = Uint8Array.from([0xff, 0xd8, ...app(60_000), 0xff, 0xff, ...app(10), ...sof, 0xff, 0xd9]);
    assert.deepEqual(imageSize(bytes), { format: 'JPEG', width: 600, height: 300 });
    // The same file cut before its frame: the page then reads the whole file and asks again.
    assert.throws(() => imageSize(bytes.subarray(0, 30_000)), (e) => e instanceof ImageHeaderError && e.kind === 'truncated' && e.format === 'JPEG');
  });

  it('says which files have no readable size: other formats, and truncated headers', () => {
    for (const name of ['text_named.png', 'script.svg']) {
      assert.throws(() => imageSize(read(name)), (e) => e instanceof ImageHeaderError && e.kind === 'unknown', name);
    }
    for (const name of ['truncated_header.png', 'truncated_header.jpg']) {
      assert.throws(() => imageSize(read(name)), (e) => e instanceof ImageHeaderError && e.kind === 'truncated', name);
    }
    assert.throws(() => imageSize(new Uint8Array(0)), ImageHeaderError);
  });

  it('never throws anything else, nor hangs, on random and mutated bytes', () => {
    const random = seeded(35);
    const seeds = Object.keys(declared).map(read);
    for (let i = 0; i < 20_000; i++) {
      let bytes;
      if (i % 2) {
        bytes = Uint8Array.from({ length: random.int(64) }, () => random.int(256));
      } else {
        bytes = seeds[random.int(seeds.length)].slice(0, 200);
        for (let k = random.int(6); k >= 0; k--) bytes[random.int(bytes.length)] = random.int(256);
      }
      try {
        const { width, height } = imageSize(bytes);
        assert.ok(Number.isInteger(width) && width >= 0 && Number.isInteger(height) && height >= 0);
      } catch (err) {
        assert.ok(err instanceof ImageHeaderError, `${err} for ${Buffer.from(bytes).toString('hex')}`);
      }
    }
  });
});
