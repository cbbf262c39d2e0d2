// Trusted Types. The page's CSP (index.html) requires them for every script URL and markup sink:
// the one policy, 'scorecam', turns only this origin's own script files into script URLs (the
// CPU workers' module www/worker.js and the service worker sw.js). The page parses no markup from
// strings (text goes in through textContent), so the policy makes no HTML; anything else that
// reaches a sink (an injected `innerHTML`, a script element's text) is refused by the browser.
// Where a browser lacks Trusted Types, the URL is used as it is (the CSP still limits scripts).

const policy = globalThis.trustedTypes?.createPolicy('scorecam', {
  createScriptURL(url) {
    const u = new URL(url, location.href);
    if (u.origin !== location.origin || !u.pathname.endsWith('.js')) throw new TypeError(`Not a script of this page: ${u.href}`);
    return u.href;
  },
});

/// `url` (a string or URL of this origin's .js file) as a script URL the CSP accepts.
export function scriptUrl(url) {
  return policy ? policy.createScriptURL(String(url)) : String(url);
}
