// Offline app shell: the app's own files (and the installed models' manifests, the samples) go to
// the network first and fall back to the last copy cached here, so the page updates when online
// and opens offline. Only those files are cached, each under its path without the query: a page
// opened with `?image=…` or a shared link is the same entry as the bare page, so links cannot
// fill the cache. Model weights are cached by the page itself (www/models.js, www/ownmodel.js),
// verified, keyed by SHA-256; they pass through here untouched.

const SHELL = 'scorecam-shell-v6';
const SHELL_PREFIX = 'scorecam-shell-'; // older versions of this cache are deleted on activate
const MODULES = ['app', 'store', 'core', 'dom', 'explain', 'model', 'models', 'ownmodel', 'inputs', 'imageheader', 'consent', 'trusted', 'draw', 'controls', 'share', 'testapi', 'workers', 'worker', 'probecache', 'plot', 'teach', 'teachdata', 'views/camera', 'views/compare', 'views/faithful', 'views/gradients', 'views/panel', 'views/sanity', 'views/steps'];
// The wasm build this browser runs (www/wasmbuild.js), not both.
importScripts('www/wasmbuild.js');
const PRECACHE = [
  './', 'scorecam.js', ...(self.scorecamUnsupported ? [] : [self.scorecamWasmFile]), 'initializer.js', 'www/style.css', 'www/wasmbuild.js',
  ...MODULES.map((m) => `www/${m}.js`),
  'www/models/index.json', 'www/samples/index.json',
];
// What else is kept when fetched: the other wasm build (after a fallback), model manifests, samples.
// (index.html is kept as './', the page whatever its query.)
const SHELL_FILES = new Set([...PRECACHE, 'scorecam_bg.wasm', 'scorecam_relaxed_bg.wasm']);
const SHELL_DIRS = [/^www\/models\/[\w.-]+\.json$/, /^www\/samples\/[^/]+$/];

/// The cache key of a same-origin `url` if it is part of the shell (its path within the scope, no
/// query or fragment), else null: fetched from the network only.
function shellKey(url, scope = self.registration.scope) {
  const u = new URL(url);
  if (!u.href.startsWith(scope)) return null;
  let path;
  try {
    path = decodeURIComponent(u.pathname.slice(new URL(scope).pathname.length));
  } catch {
    return null; // (malformed percent-encoding: not a file of ours)
  }
  if (path === '' || path === 'index.html') return new URL('./', scope).href;
  if (SHELL_FILES.has(path) || SHELL_DIRS.some((re) => re.test(path))) return new URL(path, scope).href;
  return null;
}

self.addEventListener('install', (event) => {
  // One file at a time: a missing one (no models installed yet) must not stop the rest, as
  // cache.addAll would.
  event.waitUntil(
    caches.open(SHELL)
      .then((c) => Promise.allSettled(PRECACHE.map((path) => c.add(path))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith(SHELL_PREFIX) && n !== SHELL).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/// Keeps `res` as `key`'s copy. A failed put (the storage quota, a full disk, a cache deleted
/// meanwhile) keeps the copy cached before, if any, and is logged: the page works online as
/// before, and offline with the older file.
function keep(key, res) {
  return caches.open(SHELL)
    .then((c) => c.put(key, res))
    .catch((err) => console.warn(`offline shell: ${key} not cached (${err?.name ?? 'error'}: ${err?.message ?? err}); the copy cached before, if any, stays`));
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  const key = shellKey(req.url);
  if (!key) return; // not the shell: the network's answer, nothing kept
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok && res.type === 'basic') event.waitUntil(keep(key, res.clone()));
        return res;
      })
      .catch(async () => (await caches.match(key)) ?? Response.error()),
  );
});
