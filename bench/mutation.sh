#!/usr/bin/env bash
# Mutation testing of the exactly-once core with mutmut (scope and tests: [tool.mutmut] in
# pyproject.toml). Prints the score and every surviving mutant.
#   bash bench/mutation.sh [MINUTES]      # default 90; results so far are kept in mutants/
#   MUTMUT_CHILDREN=2 bash bench/mutation.sh 30
# A second run only re-tests mutants whose code or tests changed.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-90}
bin=${VENV:-.venv}/bin
"$bin/pip" show -q mutmut >/dev/null 2>&1 || "$bin/pip" install -q 'mutmut>=3.3'
# small fault suites: each mutant is tested by the tests that run its code, stopping at the first
# failure, so a killed mutant costs seconds; a survivor costs the whole selection
export AR_SYNC_FAULT_SCHEDULES=${AR_SYNC_FAULT_SCHEDULES:-40}
export AR_SYNC_EMULATOR_SCHEDULES=${AR_SYNC_EMULATOR_SCHEDULES:-3}
timeout "$((minutes * 60))" nice "$bin/mutmut" run --max-children "${MUTMUT_CHILDREN:-1}"
echo "mutmut exit: $? (124 = stopped by the time bound)"
"$bin/mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$bin/python" - <<'PY'
import json, pathlib
stats = json.loads(pathlib.Path("mutants/mutmut-cicd-stats.json").read_text())
tested = stats["killed"] + stats["survived"] + stats.get("timeout", 0) + stats.get("suspicious", 0)
killed = stats["killed"] + stats.get("timeout", 0)
print("mutation stats:", {k: v for k, v in stats.items() if v})
if tested:
    print(f"mutation score: {killed}/{tested} = {100 * killed / tested:.1f}% of the mutants tested")
PY
"$bin/mutmut" results 2>/dev/null | grep -E "survived|no tests" || true
