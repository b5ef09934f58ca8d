#!/usr/bin/env bash
# Builds every fuzz target, then runs each for SECONDS seconds.
#
#   crates/protocol/fuzz/run-all.sh SECONDS [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Works on a stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags cargo-fuzz passes.
#
# Each run starts from the committed seeds in corpus/TARGET and writes what
# it finds to target/grown-corpus/TARGET (ignored by git), so the committed
# corpus stays the seed corpus. Crashes land in artifacts/TARGET/. Every
# target runs even if an earlier one crashed; the exit status is non-zero
# if any did. Extra libFuzzer flags can be passed in FUZZ_ARGS.
set -uo pipefail

usage() { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
seconds=$1
shift
case $seconds in '' | *[!0-9]*) usage ;; esac

cd "$(dirname "${BASH_SOURCE[0]}")"
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 1
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

start=$SECONDS
# Same flags as `cargo fuzz run` (release, debug assertions, ASan), so the
# runs below reuse this build.
for t in "${targets[@]}"; do
    "${fuzz[@]}" build "$t" || { echo "build of $t failed" >&2; exit 1; }
done
echo "built ${#targets[@]} targets in $((SECONDS - start))s"

failed=()
for t in "${targets[@]}"; do
    echo
    echo "=== fuzz $t for ${seconds}s ==="
    grown=target/grown-corpus/$t
    mkdir -p "$grown" "artifacts/$t"
    # shellcheck disable=SC2086
    if ! "${fuzz[@]}" run "$t" "$grown" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 ${FUZZ_ARGS:-}; then
        failed+=("$t")
    fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (inputs in artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds}s each without a crash"
