// Model files: download with progress, keep in Cache Storage, keyed by the file's SHA-256 so a
// new conversion is a new entry. The bytes are verified (size and SHA-256 against the manifest)
// by the wasm core when it builds the model; only bytes that passed are cached, in the background.

const CACHE = 'scorecam-models-v1';

async function openCache() {
  try {
    return 'caches' in self ? await caches.open(CACHE) : null;
  } catch {
    return null; // e.g. an opaque origin: no caching, still works
  }
}

async function download(url, total, onProgress) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`Could not download ${url.pathname}: HTTP ${res.status}.`);
  const bytes = new Uint8Array(total);
  let received = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > total) {
      reader.cancel();
      throw new Error(`${url.pathname} is larger than its manifest says (${total} bytes): the file and manifest do not match.`);
    }
    bytes.set(value, received);
    received += value.length;
    onProgress(received, total);
  }
  if (received !== total) throw new Error(`${url.pathname} is truncated: ${received} of ${total} bytes.`);
  return bytes;
}

/// Fetches `entry` (an item of models/index.json) and calls `build(manifestText, bytes)`, the
/// core's verifying loader. Cached bytes that fail are dropped and downloaded again once.
export async function loadModelFiles(entry, build, onProgress) {
  const manifestUrl = new URL(`www/models/${entry.manifest}`, location.href);
  const res = await fetch(manifestUrl, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`Could not fetch the manifest ${entry.manifest}: HTTP ${res.status}.`);
  const manifestText = await res.text();
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    throw new Error(`The manifest ${entry.manifest} is not valid JSON.`);
  }
  const { file, bytes: total, sha256 } = manifest.weights ?? {};
  if (typeof file !== 'string' || !/^[\w.-]+$/.test(file) || !(total > 0) || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new Error(`The manifest ${entry.manifest} does not describe a weight file.`);
  }
  const url = new URL(file, manifestUrl);
  const key = `${url.href}?sha256=${sha256}`;
  const cache = await openCache();
  const hit = await cache?.match(key);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    onProgress(total, total);
    try {
      return { info: await build(manifestText, bytes), fromCache: true };
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) throw err;
      console.warn('cached model rejected, downloading again:', err);
      await cache.delete(key);
    }
  }
  const bytes = await download(url, total, onProgress);
  const info = await build(manifestText, bytes);
  // In the background: the model is usable now, and writing VGG16's 138 MB took 0.4-1.8 s in
  // headless Chromium (longer while the pool's helpers start), which held up the first
  // explanation. A reload before it is written downloads the file again.
  if (cache) stored = stored.then(() => store(cache, url, key, bytes)).catch((e) => console.warn('not cached:', e));
  return { info, fromCache: false };
}

let stored = Promise.resolve(); // the background writes to Cache Storage, in order

async function store(cache, url, key, bytes) {
  // Older conversions of the same file are dead weight.
  for (const old of await cache.keys()) if (old.url.startsWith(`${url.href}?`) && old.url !== key) await cache.delete(old);
  // (A Response copies the bytes as it is made.)
  await cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
}

/// Resolves once the models loaded so far are in Cache Storage (or failed to go there).
export function whenModelsCached() {
  return stored;
}
