#!/usr/bin/env bash
# Model-checks the coherence protocol (spec/coherence.pml, docs/coherence.md) with Spin.
#
#   - the real model must have NO error (assertion violation, invalid end state)
#     and its search must be complete (not cut by the memory or depth bound);
#   - every mutant (a deliberately broken protocol, selected by a -D flag) MUST
#     have an error: a mutant that passes means the model stopped checking what
#     it claims to, so that fails the build too.
#
# Prints, per run: errors, states stored, depth reached, seconds; for a mutant,
# the counterexample's steps (shortest one: mutants are searched breadth-first).
# Needs spin (Debian package `spin`) and gcc. Exit 0 only if all of the above hold.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="$root/spec/coherence.pml"
MUTANTS=(NO_MARGIN NO_WAIT_ACK NO_HOME_WAIT PER_CHUNK_RESOLVE ACK_BEFORE_UNBIND)

command -v spin >/dev/null 2>&1 || { echo "check-model: spin not found (apt-get install spin)" >&2; exit 2; }
command -v gcc >/dev/null 2>&1 || { echo "check-model: gcc not found" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/wc-model-XXXXXX")"
trap 'rm -rf "$work"' EXIT

failed=0

# run NAME DEFINE PAN_CFLAGS -> writes $work/NAME/pan.out; echoes the error count
run() {
  local name="$1" define="$2" cflags="$3" dir="$work/$1"
  mkdir -p "$dir"
  cp "$spec" "$dir/coherence.pml"
  (
    cd "$dir"
    # shellcheck disable=SC2086 # $define is empty or one -D flag
    spin -a $define coherence.pml >spin.out 2>&1 || { cat spin.out >&2; exit 3; }
    # shellcheck disable=SC2086
    gcc -w -O2 -DMEMLIM=3072 $cflags -o pan pan.c
    ./pan -m200000 >pan.out 2>&1 || true
  )
}

# No `cmd | head` anywhere below: under pipefail the writer of such a pipe can
# die of SIGPIPE when head exits first, and `set -e` then ends the whole check
# with status 141 (seen in CI). awk reads its whole input instead.
field() { # field LABEL FILE -> the number after "LABEL" on its first line
  grep -oE "$1 [0-9]+" "$2" | awk 'NR == 1 {print $NF}'
}

report() { # report LABEL NAME
  local out="$work/$2/pan.out"
  local errors states depth secs
  errors="$(field 'errors:' "$out")"
  states="$(awk '/states, stored/ && !seen {print $1; seen = 1}' "$out")"
  depth="$(field 'depth reached' "$out")"
  secs="$(awk '/elapsed time/ && !seen {print $4; seen = 1}' "$out")"
  echo "$1: errors: ${errors:-?}, states stored: ${states:-?}, depth: ${depth:-?}, time: ${secs:-?} s"
  echo "${errors:--1}"
}

# The real model: depth-first, exhaustive, state vectors compressed losslessly.
run model "" "-DSAFETY -DCOLLAPSE"
out="$(report "model" model)"
echo "${out%%$'\n'*}"
errors="${out##*$'\n'}"
if [ "$errors" != "0" ]; then
  echo "FAIL model: expected 0 errors" >&2
  (cd "$work/model" && spin -t coherence.pml | grep -E 'assert|violated' | head -5) >&2 || true
  failed=1
fi
if grep -qE 'out of memory|max search depth too small|search not completed' "$work/model/pan.out"; then
  echo "FAIL model: search incomplete (memory or depth bound)" >&2
  grep -E 'out of memory|max search depth too small|search not completed' "$work/model/pan.out" >&2
  failed=1
fi

for mutant in "${MUTANTS[@]}"; do
  run "$mutant" "-D$mutant -DSCRATCH_VISIBLE" "-DSAFETY -DBFS"
  out="$(report "mutant $mutant" "$mutant")"
  echo "${out%%$'\n'*}"
  errors="${out##*$'\n'}"
  if [ -z "$errors" ] || [ "$errors" -lt 1 ] 2>/dev/null; then
    echo "FAIL mutant $mutant: expected a counterexample, found none" >&2
    failed=1
    continue
  fi
  # The counterexample, one line per step that changed something.
  (cd "$work/$mutant" && spin -t -p "-D$mutant" -DSCRATCH_VISIBLE coherence.pml 2>&1 |
    grep -E '^ *[0-9]+:\s+proc|assertion violated' | grep -vE '\[(else|\.\(goto\)|goto :b[0-9]+|break|\(1\))\]' |
    sed -E 's/^ *//; s/ \(state [0-9]+\)//' | head -80 | sed 's/^/    /') || true
done

if [ "$failed" -ne 0 ]; then
  echo "check-model: FAILED" >&2
  exit 1
fi
echo "check-model: OK (model: 0 errors; every mutant: a counterexample)"
