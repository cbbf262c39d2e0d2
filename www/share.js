// Share links: the URL fragment holds the view state and the image (a small JPEG, base64url) or
// the image's URL. Everything read from a fragment is validated against a closed set of keys,
// patterns and sizes; a bad link is an Error with a message for the user, never partial state.

export const LIMITS = {
  fragmentChars: 256 * 1024,
  shareImageBytes: 40 * 1024, // what we write (about 30 KB typical)
  sharedImageBytes: 160 * 1024, // what we accept from a link
  imageBytes: 50e6, // a dropped or fetched file
  imagePixels: 100e6, // as the core's decoder limit
};

const PATTERNS = {
  v: /^1$/,
  model: /^[A-Za-z0-9_.-]{1,64}$/,
  class: /^\d{1,5}$/,
  variant: /^(official|gradcam-lib|gradcam|gradcampp)$/,
  topk: /^\d{1,6}$/,
  opacity: /^(0(\.\d{1,4})?|1(\.0{1,4})?)$/,
  cmap: /^(jet|turbo|viridis)$/,
  view: /^(overlay|side)$/,
  img: /^[A-Za-z0-9_-]+$/,
  src: /^https?:\/\/[^\s]{1,2040}$/,
};

export class ShareLinkError extends Error {}

function bad(message) {
  return new ShareLinkError(`This shared link is malformed: ${message}. Drop an image to start afresh.`);
}

/// The state in `hash` (`#v=1&model=…`), or null for an empty fragment. Throws ShareLinkError.
export function parseShareFragment(hash) {
  const text = (hash ?? '').replace(/^#/, '');
  if (!text) return null;
  if (text.length > LIMITS.fragmentChars) throw bad(`it is ${(text.length / 1024).toFixed(0)} KB long (at most ${LIMITS.fragmentChars / 1024} KB)`);
  let params;
  try {
    params = new URLSearchParams(text);
  } catch {
    throw bad('it cannot be parsed');
  }
  const out = {};
  for (const key of Object.keys(PATTERNS)) {
    const all = params.getAll(key);
    if (all.length > 1) throw bad(`“${key}” appears ${all.length} times`);
    if (!all.length) continue;
    const value = all[0];
    if (!PATTERNS[key].test(value)) throw bad(`the value of “${key}” is not valid`);
    out[key] = value;
  }
  if (out.v !== '1') throw bad('it has no version (v=1)');
  if (out.img && out.src) throw bad('it holds both an image and an image address');
  const state = { model: out.model, cmap: out.cmap, view: out.view, variant: out.variant, src: out.src, img: out.img };
  if (out.class !== undefined) state.class = Number(out.class);
  if (out.topk !== undefined) {
    state.topk = Number(out.topk);
    if (state.topk < 1) throw bad('topk must be at least 1');
  }
  if (out.opacity !== undefined) state.opacity = Number(out.opacity);
  if (out.img) {
    if (out.img.length > Math.ceil((LIMITS.sharedImageBytes * 4) / 3)) throw bad('its image is too large');
    try {
      base64UrlToBytes(out.img);
    } catch {
      throw bad('its image is not valid base64url');
    }
  }
  if (out.src) {
    try {
      const u = new URL(out.src);
      if (!['http:', 'https:'].includes(u.protocol)) throw new Error();
    } catch {
      throw bad('its image address is not an http(s) URL');
    }
  }
  for (const k of Object.keys(state)) if (state[k] === undefined) delete state[k];
  return state;
}

/// `#v=1&…` for `state` (keys as parseShareFragment returns them).
export function buildShareFragment(state) {
  const p = new URLSearchParams({ v: '1' });
  for (const key of ['model', 'class', 'variant', 'topk', 'opacity', 'cmap', 'view', 'src', 'img']) {
    const value = state[key];
    if (value === undefined || value === null) continue;
    p.set(key, key === 'opacity' ? Number(value).toFixed(2) : String(value));
  }
  return `#${p.toString()}`;
}

export function bytesToBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
