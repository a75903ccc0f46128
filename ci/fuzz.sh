#!/usr/bin/env bash
# Fuzz smoke run: each cargo-fuzz target of core/fuzz for FUZZ_SECONDS (default 30)
# seconds, starting from the committed seeds (core/fuzz/corpus/<target>/seed-*).
# New corpus entries go to a scratch directory, so the repository's corpus stays
# small. Fails (exit 1) on any finding: a panic, a crash, a timeout (-timeout, 10 s
# per input), running out of memory.
#
# Usage: ci/fuzz.sh [TARGET...]        (no TARGET: all targets)
# Env:   FUZZ_SECONDS   seconds per target (default 30)
#        FUZZ_KEEP=dir  keep the grown corpora under dir instead of a temp dir
#        FUZZ_SANITIZER none (default) or address: the code under test is safe Rust
#                       (checked with overflow checks and debug assertions, which
#                       cargo fuzz turns on); ASan guards the dependencies' unsafe
#                       code at 5-12x fewer runs per second
# Needs: the nightly toolchain and cargo-fuzz (ci/setup fuzz).
#
# A finding leaves its input in core/fuzz/artifacts/<target>/ (git-ignored).
# Reproduce:  cd core/fuzz && cargo +nightly fuzz run -s none <target> <artifact>
#             (or, on stable with a trace: FUZZ_TRACE=1 cargo run --example replay -- <target> <artifact>)
# Minimize:   cd core/fuzz && cargo +nightly fuzz tmin -s none <target> <artifact>
# then add it to core/tests/fuzz_regressions.rs as a named test.
set -euo pipefail
cd "$(dirname "$0")/../core/fuzz"

ALL=(decode_event open_image ops_with_power_cuts link_device_frames link_host_frames)
TARGETS=("$@")
[ "${#TARGETS[@]}" -eq 0 ] && TARGETS=("${ALL[@]}")
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
SANITIZER=${FUZZ_SANITIZER:-none}

# Longest input per target: twice the largest event; the selector byte plus the
# largest image (8 x 512 B); 256 operations of up to 3 bytes; a few frames of
# each direction (the longest is 345 B).
max_len() {
    case "$1" in
        decode_event) echo 428 ;;
        open_image) echo 4097 ;;
        ops_with_power_cuts) echo 1024 ;;
        link_device_frames | link_host_frames) echo 2048 ;;
        *) echo "unknown target: $1 (targets: ${ALL[*]})" >&2; exit 2 ;;
    esac
}
for t in "${TARGETS[@]}"; do max_len "$t" >/dev/null; done

if [ -n "${FUZZ_KEEP:-}" ]; then
    scratch=$FUZZ_KEEP
    mkdir -p "$scratch"
else
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
fi

echo "== cargo fuzz build (nightly, sanitizer: $SANITIZER)"
cargo +nightly fuzz build --sanitizer "$SANITIZER"

summary=()
failed=0
for t in "${TARGETS[@]}"; do
    echo "== fuzz $t for ${SECONDS_PER_TARGET}s"
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    set +e
    cargo +nightly fuzz run --sanitizer "$SANITIZER" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" -len_control=0 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | head -1)
    per_sec=$(grep -oE '^stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | head -1)
    if [ "$rc" -eq 0 ]; then
        summary+=("fuzz $t: ok, ${runs:-?} runs in ${SECONDS_PER_TARGET}s (${per_sec:-?}/s)")
    else
        failed=1
        artifact=$(grep -oE '(Test unit written to|artifact_prefix.*written to) [^ ]+' "$log" | awk '{print $NF}' | tail -1)
        summary+=("fuzz $t: FAILED (exit $rc) after ${runs:-?} runs; input: ${artifact:-see log}")
        echo "-- the finding:"
        grep -m1 -A1 'panicked at' "$log" || true
        grep -m1 -E '^==[0-9]+== ERROR' "$log" || true
        grep -v '^"' "$log" | grep -A12 -m1 -E '^SUMMARY: libFuzzer' || grep -v '^"' "$log" | tail -30
    fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
