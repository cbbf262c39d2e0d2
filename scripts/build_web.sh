#!/usr/bin/env bash
# Builds the browser app into dist/ with trunk (offline: trunk never downloads a tool), plus the
# wasm's relaxed-SIMD twin, then shrinks both with wasm-opt unless SCORECAM_WASM_OPT=0.
# wasm-opt is npm's binaryen, pinned in tests/e2e/package-lock.json: Debian's binaryen 108 writes
# a module that Chromium 156 refuses to start (a `WebAssembly.Table.set` TypeError), so a system
# wasm-opt is never used. Needs the tools scripts/setup_web.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
. scripts/steps.sh

step "trunk build: the app's wasm (SIMD128)" "~17 min on 2 cores the first time, ~2 min after a change" \
  trunk build --offline --release --no-sri

# The second build: relaxed SIMD on top (`f32x4.relaxed_madd` in the CPU backend's GEMM and
# depthwise taps), for browsers that validate it. Only this crate gets the feature
# (`cargo rustc`): macerator 0.5.2, under Burn's flex, does not compile with it. Same sources, so
# wasm-bindgen writes the same JS glue, which is checked; www/wasmbuild.js picks the file before
# anything is downloaded (docs/web.md). Its own target directory, so that neither build
# invalidates the other (the extra flag is part of our crate's fingerprint, not of its file
# names); the dependencies, built with the same flags in both, are the first build's: seeded
# from it (hard links to the compiled crates, copies of the small fingerprint and build-script
# folders cargo rewrites in place), so only our two crates compile again.
RELAXED_TARGET="$CARGO_TARGET_DIR/relaxed-simd"
seed_relaxed() {
  local kind from to entry name
  for kind in wasm32-unknown-unknown/release release; do # the wasm crates; the host's build scripts and proc macros
    from="$CARGO_TARGET_DIR/$kind" to="$RELAXED_TARGET/$kind"
    [ -d "$from/deps" ] || continue
    mkdir -p "$to/deps" "$to/build" "$to/.fingerprint"
    for entry in "$from"/deps/* "$from"/build/* "$from"/.fingerprint/*; do
      name="${entry#"$from"/}"
      case "$name" in */*scorecam*) continue ;; esac # ours: compiled here with the flag
      [ -e "$to/$name" ] && continue
      case "$name" in
        deps/*) ln "$entry" "$to/$name" 2>/dev/null || cp -a "$entry" "$to/$name" ;;
        *) cp -a "$entry" "$to/$name" ;;
      esac
    done
  done
}
relaxed_build() {
  seed_relaxed
  CARGO_TARGET_DIR="$RELAXED_TARGET" cargo rustc --release --locked --lib --no-default-features \
    --target wasm32-unknown-unknown -- -C target-feature=+relaxed-simd
}
step "the relaxed-SIMD twin (our crates only)" "~3 min" relaxed_build
glue="$(mktemp -d)"
trap 'rm -rf "$glue"' EXIT
wasm-bindgen --target web --no-typescript --out-dir "$glue" --out-name scorecam \
  "$RELAXED_TARGET/wasm32-unknown-unknown/release/scorecam.wasm"
# (Comments in the glue name each closure's index in the function table, which may differ between
# the builds; the code refers to exports by name.)
same_glue() { sed -E 's/shim_idx: [0-9]+/shim_idx: N/' "$1"; }
cmp -s <(same_glue "$glue/scorecam.js") <(same_glue dist/scorecam.js) || { echo "build_web: the relaxed-SIMD build's JS glue differs from trunk's" >&2; exit 1; }
mv "$glue/scorecam_bg.wasm" dist/scorecam_relaxed_bg.wasm

# trunk's loader fetches and preloads scorecam_bg.wasm: it takes www/wasmbuild.js's choice
# instead (and the SIMD128 build if that fails to load), and nothing is preloaded, so a browser
# downloads one of the two builds only.
python3 - dist/index.html <<'PY'
import re, sys
path = sys.argv[1]
html = open(path).read()
loader = re.compile(r"__trunkInitializer\(init, '\./scorecam_bg\.wasm', (\d+), initializer\(\), true\)")
preload = re.compile(r'<link rel="preload" href="\./scorecam_bg\.wasm"[^>]*>')
if len(loader.findall(html)) != 1 or len(preload.findall(html)) != 1:
    sys.exit("build_web: trunk's loader is not as expected; see scripts/build_web.sh")
html = loader.sub(r"window.scorecamLoadWasm((file, onFailed) => __trunkInitializer(init, './' + file, \1, initializer(onFailed), true))", html)
html = preload.sub('', html)
# The CSP (index.html) allows trunk's inline loader by its hash, and no other inline script.
import base64, hashlib
inline = re.findall(r'<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>', html, re.S)
if len(inline) != 1 or html.count("'sha256-TRUNK-LOADER'") != 1:
    sys.exit("build_web: expected one inline script (trunk's loader) and the CSP's sha256-TRUNK-LOADER; see index.html")
digest = base64.b64encode(hashlib.sha256(inline[0].encode('utf-8')).digest()).decode()
html = html.replace("'sha256-TRUNK-LOADER'", f"'sha256-{digest}'")
open(path, 'w').write(html)
PY

# wasm-opt: npm's binaryen, run as wasm in node (a few minutes per module here, both at once).
# Its output is kept beside the build cache, keyed by the input's SHA-256 and the wasm-opt
# version, and reused when the build has not changed.
optimise() {
  local file="$1" before key
  before=$(stat -c %s "$file")
  key="$(sha256sum "$file" | cut -c1-64)-$("$WASM_OPT" --version | tr -cd '[:alnum:]._-')"
  if [ ! -f "$cache/$key.wasm" ]; then
    mkdir -p "$cache"
    "$WASM_OPT" -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
      --enable-relaxed-simd "$file" -o "$cache/$key.tmp"
    mv "$cache/$key.tmp" "$cache/$key.wasm"
  fi
  cp "$cache/$key.wasm" "$file"
  echo "wasm-opt: $file $before -> $(stat -c %s "$file") bytes"
}
if [ "${SCORECAM_WASM_OPT:-1}" != 0 ]; then
  WASM_OPT=tests/e2e/node_modules/.bin/wasm-opt
  [ -x "$WASM_OPT" ] || { echo "build_web: $WASM_OPT is missing: run scripts/setup_web.sh" >&2; exit 1; }
  cache="$(dirname "$CARGO_TARGET_DIR")/wasm-opt"
  both() {
    optimise dist/scorecam_bg.wasm &
    local plain=$!
    optimise dist/scorecam_relaxed_bg.wasm
    wait "$plain"
  }
  step "wasm-opt on both builds (at once)" "~12 min the first time, reused when unchanged" both
  ls -t "$cache"/*.wasm | tail -n +7 | xargs -r rm -f # keep the six newest (three builds of each)
fi
for f in dist/scorecam_bg.wasm dist/scorecam_relaxed_bg.wasm; do
  echo "built $f ($(stat -c %s "$f") bytes, $(gzip -9 -c "$f" | wc -c) gzipped)"
done
