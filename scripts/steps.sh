# Sourced by the setup, build and test scripts: each step says what it does and roughly how long
# it takes, a line every minute while it runs, and its time when done; `steps_summary` prints them
# all (the README's table of the two commands comes from these lines).
#   step "building the app (wasm)" "~15 min the first time, ~1 min after" cmd args...
# Nested scripts print their steps indented under the step that runs them.

STEPS_DEPTH="${STEPS_DEPTH:-0}"
STEPS_LOG=()

_steps_fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

step() {
  local name="$1" estimate="$2"
  shift 2
  local indent
  indent="$(printf '%*s' $((STEPS_DEPTH * 2)) '')"
  echo "${indent}== ${name} (${estimate})"
  local t0=$SECONDS
  # The heartbeat: long steps (a cold build) say they are alive once a minute.
  ( while sleep 60; do echo "${indent}   ... ${name}: $(_steps_fmt $((SECONDS - t0))) so far"; done ) &
  local beat=$!
  local rc=0
  STEPS_DEPTH=$((STEPS_DEPTH + 1)) "$@" || rc=$?
  kill "$beat" 2>/dev/null
  wait "$beat" 2>/dev/null || true
  local took=$((SECONDS - t0))
  STEPS_LOG+=("$(_steps_fmt $took)  ${name}")
  if [ $rc -ne 0 ]; then
    echo "${indent}== FAILED after $(_steps_fmt $took): ${name}" >&2
    return $rc
  fi
  echo "${indent}   done in $(_steps_fmt $took): ${name}"
}

steps_summary() {
  local title="$1"
  echo "== ${title}: $(_steps_fmt $SECONDS) in all"
  local line
  for line in "${STEPS_LOG[@]}"; do echo "   $line"; done
}

export STEPS_DEPTH
