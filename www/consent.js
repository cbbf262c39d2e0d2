// Asking before the page fetches an image from a server a link named (`?image=`, a share link's
// `src`): opening a link must not make the browser contact whatever host the link's author chose
// (an intranet address, a router on localhost, a tracker) without the visitor saying yes. The
// prompt names the host; this page's own origin (its samples) needs no question.

import { $ } from './dom.js';

/// Whether fetching `url` needs the visitor's yes: any origin but the page's own.
export function needsConsent(url, base = location.href) {
  let parsed;
  try {
    parsed = new URL(url, base);
  } catch {
    return false; // refused later, with its own message
  }
  // Another server's image must be https (the CSP's connect-src): anything else is refused
  // before any fetch (inputs.js), with its own message, never asked about.
  return parsed.origin !== new URL(base).origin && parsed.protocol === 'https:';
}

/// Whether `hostname` (as the URL parser writes it) names this computer or a private network:
/// the hosts a link's author can reach only through the visitor's browser.
export function isLocalHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal') || h.endsWith('.lan') || h.endsWith('.home.arpa')) return true;
  if (!h.includes('.') && !h.includes(':')) return true; // a bare intranet name
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  return h === '::1' || h === '::' || /^f[cd][0-9a-f]{2}:/.test(h) || /^fe[89ab][0-9a-f]:/.test(h) || h.startsWith('::ffff:');
}

let pending = null; // the open question's answer: one at a time

/// Shows "Load the image from HOST?" and resolves with the visitor's answer (true: load it).
/// `url` came from a link; its host is shown as the URL parser writes it (punycode for
/// internationalised names), as text.
export function askToFetch(url) {
  const { host, hostname, href } = new URL(url, location.href);
  pending?.(false);
  const whose = isLocalHost(hostname)
    ? `${host}, which is this computer or a device on your own network, not a public website`
    : host;
  const shown = href.length > 200 ? `${href.slice(0, 200)}…` : href;
  $('fetch-confirm-text').textContent = `Load the image from ${whose}? This link asks the page to fetch ${shown}: that server will see your IP address. Your photos are never sent anywhere.`;
  $('fetch-confirm').hidden = false;
  $('fetch-confirm-load').focus();
  return new Promise((resolve) => {
    pending = (answer) => {
      pending = null;
      $('fetch-confirm').hidden = true;
      resolve(answer);
    };
  });
}

/// Closes an open question as a no (another image was chosen meanwhile).
export function dismiss() {
  pending?.(false);
}

export function init() {
  $('fetch-confirm-load').addEventListener('click', () => pending?.(true));
  $('fetch-confirm-skip').addEventListener('click', () => pending?.(false));
}
