// Which of the two wasm builds this browser runs (scripts/build_web.sh makes both): the one with
// relaxed SIMD (one fused f32x4.relaxed_madd per 4 multiply-adds in the CPU backend's GEMM and
// depthwise taps) where the browser validates it, else the SIMD128 one. The choice is made before
// anything is downloaded, so no browser fetches both; `?simd=simd128` forces the SIMD128 build.
// Should the relaxed build fail to load (a host that serves only part of dist/, a browser that
// validates the probe but not the module), the SIMD128 build is loaded instead. A classic script,
// so that the page (before trunk's loader, which build_web.sh points at this choice) and the
// service worker (importScripts) both read it.
// A browser without WebAssembly SIMD, which both builds need, downloads neither: the start fails at
// once, naming what is missing (`scorecamUnsupported`; www/core.js words the message).
(function chooseWasmBuild() {
  // (module (func (result v128) i32.const 0 i8x16.splat)): valid only where SIMD128 is.
  const simdProbe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 15, 11]);
  // (module (func (result v128) i32.const 1 i8x16.splat i32.const 2 i8x16.splat
  //   i8x16.relaxed_swizzle)): valid only where relaxed SIMD is (wasm-feature-detect's probe).
  const relaxedProbe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);
  const validates = (bytes) => {
    try {
      return WebAssembly.validate(bytes);
    } catch {
      return false;
    }
  };
  const forced = /[?&]simd=simd128(&|$)/.test(globalThis.location?.search ?? '');
  globalThis.scorecamUnsupported = typeof WebAssembly !== 'object' ? 'WebAssembly' : validates(simdProbe) ? null : 'WebAssembly SIMD';
  const relaxed = !forced && !globalThis.scorecamUnsupported && validates(relaxedProbe);
  const simd128 = 'scorecam_bg.wasm';
  globalThis.scorecamWasmFile = relaxed ? 'scorecam_relaxed_bg.wasm' : simd128;

  /// Records a failed start for www/core.js, which may run before or after it: trunk's
  /// initializer (www/initializer.js) on a build that does not load, or the check above.
  globalThis.scorecamFailStart = (error) => {
    globalThis.scorecamStartError = error;
    globalThis.dispatchEvent?.(new CustomEvent('scorecam-start-failed', { detail: { error } }));
  };

  /// Runs trunk's loader on the chosen build: `load(file, onFailed)` resolves to what trunk's
  /// initializer resolves to, and calls `onFailed(error)` instead of recording a failed start
  /// when it is given one. scorecamWasmFile ends as the build that was loaded (or tried last).
  globalThis.scorecamLoadWasm = async (load) => {
    if (globalThis.scorecamUnsupported) {
      const error = Object.assign(new Error(`this browser does not run ${globalThis.scorecamUnsupported}`), { unsupported: globalThis.scorecamUnsupported });
      globalThis.scorecamFailStart(error);
      return error;
    }
    const file = globalThis.scorecamWasmFile;
    if (file === simd128) return load(file, null);
    let failed = null;
    const wasm = await load(file, (error) => {
      failed = error;
    });
    if (!failed) return wasm;
    console.warn(`The relaxed-SIMD build (${file}) did not load; loading the SIMD128 build instead.`, failed);
    globalThis.scorecamWasmFile = simd128;
    return load(simd128, null);
  };
})();
