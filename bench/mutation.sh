#!/usr/bin/env bash
# Mutation testing of the exactly-once core with mutmut: the protocol's functions only (listed
# below), against the fast test selection in [tool.mutmut] (pyproject.toml). Prints the score
# and every surviving mutant.
#   bash bench/mutation.sh [MINUTES]      # default 90; results are kept in $MUTATION_DIR
#   MUTMUT_CHILDREN=1 bash bench/mutation.sh 30
# A second run only re-tests mutants whose code or tests changed.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-90}
bin=$PWD/${VENV:-.venv}/bin
"$bin/pip" show -q mutmut >/dev/null 2>&1 || "$bin/pip" install -q 'mutmut>=3.3'
# mutmut names a mutant after its file's path under src/; the connectors are imported as
# top-level packages, so they are staged next to ar_sync in a copy (kept between runs).
stage=${MUTATION_DIR:-${TMPDIR:-/tmp}/ar-sync-mutation}
mkdir -p "$stage/src"
for pkg in src/ar_sync connectors/ar_sync_quickbooks connectors/ar_sync_xero; do
  rm -rf "$stage/src/$(basename "$pkg")" && cp -a "$pkg" "$stage/src/"
done
rm -rf "$stage/tests" "$stage/rules" && cp -a tests rules "$stage/"
sed -e 's|^source_paths = .*|source_paths = ["src"]|' -e 's|"connectors/|"src/|g' \
  pyproject.toml > "$stage/pyproject.toml"
cd "$stage"
S=$'\u01c1'  # mutmut's separator in method names: module.xǁClassǁmethod
# the claim protocol, reconciliation and keys first; then the run around them
# (MUTANTS="glob …" runs only those, e.g. MUTANTS='ar_sync_xero.*' bash bench/mutation.sh 10)
first=(
  "ar_sync.store.sqlite.store.x${S}SQLiteStore${S}"{claim,_finish,complete,fail,record_skip,record_skips,unfinished,action_payload,acquire_lock,release_lock}"__mutmut_*"
  "ar_sync.sync.execute.x__claim_and_write__mutmut_*"
  "ar_sync.sync.retry.x_write_reconciled__mutmut_*"
  "ar_sync.domain.models.x_action_key__mutmut_*"
  "ar_sync.sync.connector.x_key_marker__mutmut_*"
  "ar_sync_quickbooks.connector.x${S}QuickBooksConnector${S}_reconciled__mutmut_*"
  "ar_sync_quickbooks.effects.x_"*"__mutmut_*"
  "ar_sync_quickbooks.mapping.x_"{has_marker,find_line_with_marker,fee_description,note_text,fee_invoice_note}"__mutmut_*"
  "ar_sync_xero.connector.x${S}XeroConnector${S}_reconciled__mutmut_*"
  "ar_sync_xero.effects.x_"*"__mutmut_*"
)
rest=("ar_sync.sync.execute.x_"{execute_action,write_claimed,_write}"__mutmut_*"
      "ar_sync.sync.run.x_"{run_tenant,_run,_stopped_early}"__mutmut_*"
      "ar_sync.sync.phases.x_"{fetch,snapshot,plan,execute,checkpoint,_queue,_one_step,_batch}"__mutmut_*")
core=("${first[@]}" "${rest[@]}")
if [ -n "${MUTANTS:-}" ]; then read -r -a first <<< "$MUTANTS"; rest=(); core=("${first[@]}"); fi
# small fault suites: a mutant runs only the tests that execute its code, stopping at the first
# failure, so a killed mutant costs seconds and a survivor the whole selection
export AR_SYNC_FAULT_SCHEDULES=${AR_SYNC_FAULT_SCHEDULES:-20}
export AR_SYNC_EMULATOR_SCHEDULES=${AR_SYNC_EMULATOR_SCHEDULES:-4}
end=$((SECONDS + minutes * 60))
for phase in first rest; do
  left=$((end - SECONDS))
  [ "$left" -gt 60 ] || { echo "time bound reached before phase '$phase'"; break; }
  declare -n names=$phase
  [ "${#names[@]}" -gt 0 ] || continue
  timeout "$left" nice "$bin/mutmut" run --max-children "${MUTMUT_CHILDREN:-2}" "${names[@]}"
done
echo "mutmut exit: $? (124 = stopped by the time bound)"
mkdir -p mutants && "$bin/mutmut" results --all true 2>/dev/null > mutants/results.txt || true
"$bin/python" - "${core[@]}" <<'PY'
import fnmatch, sys
from collections import Counter
globs = sys.argv[1:]
rows = [line.strip().rsplit(": ", 1) for line in open("mutants/results.txt") if ": " in line]
mine = [(name, status) for name, status in rows if any(fnmatch.fnmatchcase(name, g) for g in globs)]
count = Counter(status for _, status in mine)
print("mutants of the core:", len(mine), dict(count))
tested = sum(n for s, n in count.items() if s not in ("not checked", "skipped"))
killed = count["killed"] + count["timeout"]
if tested:
    print(f"mutation score: {killed}/{tested} = {100 * killed / tested:.1f}% of the mutants tested")
for name, status in mine:
    if status in ("survived", "no tests"):
        print(f"  {status}: {name}")
PY
