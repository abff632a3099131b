#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the whole vitest suite against it, then checks that the ordinary
# build is warning-free (-Wall -Wextra) and leaves it in place.
#
# The sanitized build and the test run happen in a scratch copy of the
# sources, so that build/Release in the checkout (which other processes
# may be using) never holds an ASan-instrumented addon, which cannot load
# without libasan preloaded.
#
#   bash scripts/sanitize.sh            # whole suite
#   bash scripts/sanitize.sh test/x.test.ts ...   # some files only
#
# SANITIZE_EXCLUDE (space-separated files) are left out of the run. By
# default that is test/cli/ and test/chart-browser.test.ts: they
# drive a terminal (script(1)) and headless chromium, which run with libasan
# preloaded too under this setup, and the terminal progress-bar test hangs
# there in execFileSync (the same snapshot completes under ASan when run
# directly). Set SANITIZE_EXCLUDE= to run them anyway.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/pagewalk-sanitize.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The privilege tests run fixtures from here as nobody.
chmod 755 "$work"

echo "sanitize: sources copied to $work"
for f in lib native test benchmarks scripts binding.gyp package.json package-lock.json tsconfig.json \
  tsconfig.build.json vitest.config.ts biome.json README.md; do
  [ -e "$repo/$f" ] && cp -a "$repo/$f" "$work/"
done
rm -rf "$work/test/fixtures/bin"
ln -s "$repo/node_modules" "$work/node_modules"
cd "$work"

check_warnings() {
  local log="$1"
  if grep -E "warning:" "$log" | grep -v "node_modules/node-addon-api" >/dev/null; then
    echo "sanitize: the native build has warnings:" >&2
    grep -E -A3 "warning:" "$log" >&2
    exit 1
  fi
}

echo "sanitize: building with -fsanitize=address,undefined"
PAGEWALK_SANITIZE=1 npx node-gyp rebuild >"$work/build-asan.log" 2>&1 || {
  cat "$work/build-asan.log" >&2
  exit 1
}
check_warnings "$work/build-asan.log"

asan="$(gcc -print-file-name=libasan.so)"
if [ ! -e "$asan" ]; then
  echo "sanitize: libasan.so not found (apt: libasan8 / gcc)" >&2
  exit 1
fi
# The ESM wrapper step loads the addon: it needs the runtime too.
LD_PRELOAD="$asan" ASAN_OPTIONS=detect_leaks=0 npm run build:ts --silent
# Tools that tests run and that never load the addon run without the
# preload: pgrep under libasan hangs on this machine (seen with procps 4).
shims="$work/.sanitize-shims"
mkdir -p "$shims"
for tool in pgrep pkill ps smem; do
  real="$(command -v "$tool" || true)"
  [ -n "$real" ] || continue
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec "%s" "$@"\n' "$real" >"$shims/$tool"
  chmod +x "$shims/$tool"
done
export PATH="$shims:$PATH"

exclude=()
for f in ${SANITIZE_EXCLUDE-test/cli/** test/chart-browser.test.ts}; do exclude+=(--exclude "$f"); done
echo "sanitize: running vitest with LD_PRELOAD=$asan ${exclude[*]}"
# detect_leaks=0: node itself leaks at exit. halt_on_error: a UBSan report
# fails the run instead of scrolling by.
LD_PRELOAD="$asan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  npx vitest run "${exclude[@]}" "$@"

echo "sanitize: ordinary build (-Wall -Wextra) must be warning-free"
cd "$repo"
npx node-gyp rebuild >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}
check_warnings "$work/build.log"
echo "sanitize: clean"
