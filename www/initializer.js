// Trunk's initializer for the wasm module (index.html, data-initializer): shows the download in
// the badge, and records a failed start for www/core.js, which may run before or after this.
// Trunk copies this file to the site's root; it imports nothing.

/// `onFailed(error)`: called instead of recording a failed start (www/wasmbuild.js then loads the
/// other build).
export default function initializer(onFailed = null) {
  return {
    // `total` is the size trunk saw, before scripts/build_web.sh's wasm-opt: only `current` is true.
    onProgress({ current }) {
      const badge = document.getElementById('backend-badge');
      if (badge) badge.textContent = `starting… ${(current / 1e6).toFixed(1)} MB`;
    },
    onFailure(error) {
      if (onFailed) return onFailed(error);
      window.scorecamFailStart(error); // www/wasmbuild.js
    },
  };
}
