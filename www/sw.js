// Offline app shell: every same-origin GET except the model files goes to the network first and
// falls back to the last copy cached here, so the page updates when online and opens offline.
// Model weights are cached by the page itself (www/models.js), verified, keyed by SHA-256.

const SHELL = 'scorecam-shell-v5';
const MODULES = ['app', 'store', 'core', 'dom', 'explain', 'model', 'models', 'inputs', 'draw', 'controls', 'share', 'testapi', 'workers', 'worker', 'probecache', 'plot', 'teach', 'teachdata', 'views/steps', 'views/gradients', 'views/faithful', 'views/sanity', 'views/camera', 'views/panel'];
// The wasm build this browser runs (www/wasmbuild.js), not both.
importScripts('www/wasmbuild.js');
const PRECACHE = [
  './', 'index.html', 'scorecam.js', ...(self.scorecamUnsupported ? [] : [self.scorecamWasmFile]), 'initializer.js', 'www/style.css', 'www/wasmbuild.js',
  ...MODULES.map((m) => `www/${m}.js`),
  'www/models/index.json', 'www/samples/index.json',
];

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
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.endsWith('.safetensors')) return;
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(SHELL).then((c) => c.put(req, copy));
        }
        return res;
      })
      .catch(async () => (await caches.match(req, { ignoreSearch: true })) ?? Response.error()),
  );
});
