// The convolution-kernel probes (src/models/probe.rs), kept in IndexedDB per adapter, model and
// batch (the probe's own `key`), so the probe runs once per device and the next load reuses it.
// Without IndexedDB (an opaque origin, private modes) the page still works and probes each load.

const DB = 'scorecam';
const STORE = 'conv-probes';

function open() {
  return new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
}

function request(db, mode, use) {
  return new Promise((resolve) => {
    try {
      const tx = db.transaction(STORE, mode);
      const req = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
}

/// Every cached probe (an array, possibly empty).
export async function cachedProbes() {
  const db = await open();
  if (!db) return [];
  const all = await request(db, 'readonly', (s) => s.getAll());
  db.close();
  return Array.isArray(all) ? all : [];
}

/// Keeps `probe` (replacing one with the same key).
export async function cacheProbe(probe) {
  const db = await open();
  if (!db) return;
  await request(db, 'readwrite', (s) => s.put(probe));
  db.close();
}

/// Forgets every probe (the next load probes again).
export async function clearProbes() {
  const db = await open();
  if (!db) return;
  await request(db, 'readwrite', (s) => s.clear());
  db.close();
}
