#!/usr/bin/env bash
# Mutation testing of the exactly-once core with mutmut: the functions listed in
# bench/mutation_run.py (CORE), against the fast test selection in [tool.mutmut]
# (pyproject.toml). Prints the figures (mutants of the core, reached, killed, timeouts,
# survivors, minutes) and every mutant not killed.
#   MUTMUT_CHILDREN=1 bash bench/mutation.sh [MINUTES]  # default 240; verdicts kept in $MUTATION_DIR
#   MUTATION_RETEST=survived bash bench/mutation.sh      # also re-test every survivor
#   MUTATION_FRESH=1 bash bench/mutation.sh              # forget every earlier verdict
#   MUTATION_REMAP=1 bash bench/mutation.sh              # map every test to functions again
#   MUTATION_ONLY='ar_sync.sync.execute.*' bash bench/mutation.sh  # only these mutants (globs)
# A run stopped by its time bound (or Ctrl-C) goes on where it stopped when started again: it
# tests only mutants without a verdict (new ones, and those of functions whose code changed:
# mutmut compares each function's hash), and survivors whose tests changed since their verdict.
set -uo pipefail
# all in one function: bash reads it whole, so editing this file during a run is safe
main() {
  cd "$(dirname "$0")/.."
  minutes=${1:-240}
  bin=$PWD/${VENV:-.venv}/bin
  [ "$("$bin/python" -c 'import mutmut; print(mutmut.__version__)' 2>/dev/null)" = 3.8.1 ] ||
    "$bin/pip" install -q 'mutmut==3.8.1'  # mutation_run.py calls mutmut's own functions
  # mutmut names a mutant after its file's path under src/; the connectors are imported as
  # top-level packages, so they are staged next to ar_sync in a copy (kept between runs; cp -a
  # keeps the files' times, so mutmut regenerates only the files that changed).
  stage=${MUTATION_DIR:-${TMPDIR:-/tmp}/ar-sync-mutation}
  [ -z "${MUTATION_FRESH:-}" ] || rm -rf "$stage"
  mkdir -p "$stage/src"
  for pkg in src/ar_sync connectors/ar_sync_quickbooks connectors/ar_sync_xero; do
    rm -rf "$stage/src/$(basename "$pkg")" && cp -a "$pkg" "$stage/src/"
  done
  rm -rf "$stage/tests" "$stage/rules" && cp -a tests rules "$stage/"
  cp bench/mutation_run.py "$stage/"
  sed -e 's|^source_paths = .*|source_paths = ["src"]|' -e 's|"connectors/|"src/|g' \
    pyproject.toml > "$stage/pyproject.toml"
  cd "$stage"
  # small fault suites: a mutant runs only the tests that execute its code, fastest first,
  # stopping at the first failure, so a killed mutant costs seconds and a survivor its tests
  export AR_SYNC_FAULT_SCHEDULES=${AR_SYNC_FAULT_SCHEDULES:-20}
  start=$SECONDS
  timeout -s INT $((minutes * 60 + 60)) nice "$bin/python" mutation_run.py run "$minutes"
  status=$?
  echo "minutes in all (generating, mapping, testing): $(( (SECONDS - start + 30) / 60 ))" \
    "(exit $status; 124: stopped by timeout)"
  return "$status"
}
main "$@"; exit  # one line: bash reads nothing after it
