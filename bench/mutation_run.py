"""The mutation run of the exactly-once core, driven through mutmut's own functions.

Run from the staged copy that bench/mutation.sh prepares (the working directory holds
src/, tests/ and a pyproject.toml with [tool.mutmut]); not a test, not part of the package.

    python mutation_run.py run MINUTES    # test what is not yet known, then print the figures
    python mutation_run.py report         # the figures and the survivors of the last runs
    python mutation_run.py survivors      # the survivors by function, with mutant numbers
    python mutation_run.py stats          # only generate the mutants and map tests to functions

Why not `mutmut run GLOB…`: mutmut re-tests every mutant a name matches, so a second run
would start over; and without names it tests every mutant of the mutated files, which
include functions outside the core. Here the scope is a list of functions (CORE), and a run
tests only the core's mutants without a verdict (new, or their function changed) plus the
survivors when asked (MUTATION_RETEST=survived: a test added since may kill them), fastest
first, within the time bound.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

S = "\u01c1"  # mutmut's separator in method names: module.xǁClassǁmethod


def _methods(module: str, cls: str, names: str) -> list[str]:
    return [f"{module}.x{S}{cls}{S}{n}__mutmut_*" for n in names.split()]


def _functions(module: str, names: str) -> list[str]:
    return [f"{module}.x_{n}__mutmut_*" for n in names.split()]


# The exactly-once core: the run and its phases, the single, batched and e-mail write paths,
# the retry of a write, the two ledgers' conditional writes and locks, and the connectors'
# reconciliation. Whole modules where the module is the protocol; named functions where a
# module also holds other concerns (tokens, OAuth, snapshots, reports).
CORE = [
    *(f"ar_sync.sync.{m}.x*__mutmut_*"
      for m in ("run", "phases", "execute", "batch", "mail", "deliver", "ledger", "retry")),
    *_functions("ar_sync.store.sqlite.store", "_insert_skip _iso"),
    *_methods("ar_sync.store.sqlite.store", "SQLiteStore",
              "claim _finish complete fail record_skip record_skips get unfinished "
              "action_payload acquire_lock release_lock"),
    *_methods("ar_sync.store.dynamodb.ledger", "DynamoDBLedgerMixin",
              "claim _finish_owned complete fail record_skip record_skips _skip_row _expiry "
              "_summarize get unfinished action_payload"),
    *_functions("ar_sync.store.dynamodb.codec", "new_row conditional_failed"),
    *_methods("ar_sync.store.dynamodb.codec", "DynamoDBTables", "_put _update"),
    *_methods("ar_sync.store.dynamodb.store", "DynamoDBStore", "acquire_lock release_lock"),
    "ar_sync_quickbooks.effects.x*__mutmut_*",
    "ar_sync_xero.effects.x*__mutmut_*",
    *_methods("ar_sync_quickbooks.connector", "QuickBooksConnector", "_reconciled"),
    *_methods("ar_sync_xero.connector", "XeroConnector", "_reconciled"),
]

# what a verdict is called in the figures
KILLED, TIMEOUT, SURVIVED, NO_TESTS = "killed", "timeout", "survived", "no tests"
INTERRUPTED = "check was interrupted by user"  # Ctrl-C reached the test: no verdict
TESTED_WITH = "mutants/core-tested-with.json"  # mutant -> fingerprint of its tests


def in_core(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in CORE)


def _verdicts() -> dict[str, int | None]:
    """Every core mutant mutmut knows, with its exit code (None: not tested yet)."""
    out: dict[str, int | None] = {}
    for meta in Path("mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        out.update({k: v for k, v in data["exit_code_by_key"].items() if in_core(k)})
    return out


def _fingerprint(tests: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(tests)).encode()).hexdigest()[:16]


def _tested_with() -> dict[str, str]:
    """Each verdict's test selection (a fingerprint), as of when it was given."""
    path = Path(TESTED_WITH)
    return json.loads(path.read_text()) if path.exists() else {}


def _due(code: int | None, retest: set[str], fingerprint: str | None, tests: set[str]) -> bool:
    """Test a mutant without a verdict, one asked for (MUTATION_RETEST), and a survivor or a
    mutant without tests whose tests changed since: a test added since may kill it."""
    if code is None or _status(code) in retest or _status(code) == INTERRUPTED:
        return True
    if _status(code) in (SURVIVED, NO_TESTS):
        return bool(tests) and fingerprint != _fingerprint(tests)
    return False


def _status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return str(status_by_exit_code[code])


def _prepare(children: int) -> Any:
    """mutmut's own first steps of a run: copy, mutate, map tests to functions."""
    import mutmut.__main__ as mm
    from hypothesis import settings

    # The same examples in every run (the clean run, each mutant's): a random example that
    # fails in one run only would be taken for a kill, or stop the run as a failing selection.
    settings.register_profile("mutation", derandomize=True, database=None)
    settings.load_profile("mutation")
    mm.print_status = lambda *_args, **_kw: None  # no spinner in a log
    mm.set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # one line per file copied
        mm.copy_src_dir()
        mm.copy_also_copy_files()
        mm.setup_source_paths()
        mm.create_mutants(children)
    runner = mm.get_mutant_runner(children)
    started = time.monotonic()
    mm.collect_or_load_stats(runner, apply_config_invalidation=True)
    # mutmut maps only new tests to functions; a function that changed (or is new) since the
    # last mapping would keep the old tests' map, without the tests that now execute it
    st = mm.state()
    changed = [f for f, h in st.current_function_hashes.items()
               if st.old_function_hashes.get(f) != h]
    if (st.old_function_hashes and changed) or os.environ.get("MUTATION_REMAP"):
        print(f"{len(changed)} functions changed since the tests were mapped: mapping again",
              flush=True)
        st.tests_by_mangled_function_name.clear()
        st.duration_by_test.clear()
        mm.run_stats_collection(runner)
    print(f"tests mapped to functions in {(time.monotonic() - started) / 60:.1f} min",
          flush=True)
    return mm, runner


def run(minutes: float, children: int, retest: set[str]) -> None:
    mm, runner = _prepare(children)
    state = mm.state()
    tested_with = _tested_with()
    only = os.environ.get("MUTATION_ONLY", "").split()  # globs: test only these mutants
    todo: list[tuple[float, Any, str]] = []
    for path in mm.walk_mutatable_files():
        data = mm.SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            tests = state.tests_by_mangled_function_name.get(
                mm.mangled_name_from_mutant_name(name), set())
            if not in_core(name) or not _due(code, retest, tested_with.get(name), tests):
                continue
            if only and not any(fnmatch.fnmatchcase(name, g) for g in only):
                continue
            todo.append((sum(state.duration_by_test[t] for t in tests), data, name))
    # mutants never tested first (reach them all), then the re-tests; cheapest first in each
    todo.sort(key=lambda t: (t[1].exit_code_by_key[t[2]] is not None, t[0]))
    print(f"to test: {len(todo)} core mutants without a verdict (or whose tests changed)"
          + (f" or {' or '.join(sorted(retest))}" if retest else "")
          + f"; if all survived: {sum(t[0] for t in todo) / 60:.0f} test-minutes", flush=True)
    if not todo:
        return
    # mutmut's sanity checks: the selection passes unmutated, and a forced failure fails
    names = {mm.mangled_name_from_mutant_name(name) for _, _, name in todo}
    tests = {t for n in names for t in state.tests_by_mangled_function_name.get(n, ())}
    mm.set_mutant_under_test("")
    with mm.CatchOutput(spinner_title="clean tests") as out:
        if runner.run_clean_tests(tests=sorted(tests)) != 0:
            out.dump_output()
            raise SystemExit("the test selection fails without any mutant")
    mm.run_forced_fail_test(runner)
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    pending: dict[str, Any] = {}
    tried = 0

    submitted: dict[str, str] = {}

    def drain() -> None:
        nonlocal tried
        result = runner.wait_for_result()
        mm._register_mutant_result(result, pending)
        tested_with[result.mutant_name] = submitted[result.mutant_name]
        Path(TESTED_WITH).write_text(json.dumps(tested_with, indent=0, sort_keys=True))
        tried += 1
        if tried % 50 == 0:
            rate = tried / max(time.monotonic() - started, 1) * 60
            print(f"  {tried}/{len(todo)} tested ({rate:.1f} mutants/minute)", flush=True)

    mm.set_mutant_under_test("")
    runner.startup()
    stopped = ""
    try:
        for estimate, data, name in todo:
            if time.monotonic() > deadline:
                stopped = "stopped by the time bound"
                break
            tests = state.tests_by_mangled_function_name.get(
                mm.mangled_name_from_mutant_name(name), set())
            if not tests:
                data.exit_code_by_key[name] = 33
                data.save()
                tested_with[name] = _fingerprint(tests)
                continue
            cfg = mm.config()
            limit = int((estimate + cfg.timeout_constant) * cfg.timeout_multiplier * 2) + 1
            while not runner.has_capacity():
                drain()
            pending[name] = data
            submitted[name] = _fingerprint(tests)
            runner.submit(name, list(tests), limit, estimate)
        runner.signal_work_complete()
        while runner.pending_count() > 0:
            drain()
    except KeyboardInterrupt:
        stopped = "interrupted"
        runner.stop_all_workers()
    finally:
        runner.shutdown()
    took = (time.monotonic() - started) / 60
    print(f"tested {tried} mutants in {took:.1f} min "
          f"({tried / max(took, 1e-9):.1f} mutants/minute)"
          + (f"; {stopped}: run it again to go on" if stopped else ""))


def report() -> int:
    verdicts = _verdicts()
    count = Counter(_status(c) for c in verdicts.values())
    reached = sum(n for s, n in count.items() if s not in ("not checked", NO_TESTS))
    killed = count[KILLED] + count[TIMEOUT]
    print(f"mutants of the core: {len(verdicts)}; reached: {reached}; "
          f"killed: {count[KILLED]}; timeouts: {count[TIMEOUT]}; "
          f"survived: {count[SURVIVED]}; not reached: {count['not checked']}; "
          f"no tests: {count[NO_TESTS]}"
          + "".join(f"; {s}: {n}" for s, n in sorted(count.items())
                    if s not in (KILLED, TIMEOUT, SURVIVED, "not checked", NO_TESTS)))
    if reached:
        print(f"mutation score: {killed}/{reached} = {100 * killed / reached:.1f}% "
              "of the mutants reached")
    for name, code in sorted(verdicts.items()):
        if _status(code) not in (KILLED, TIMEOUT):
            print(f"  {_status(code)}: {name}")
    return 0


def survivors() -> int:
    """The survivors, one line per function with its mutant numbers (docs/exactly-once.md)."""
    by_function: dict[str, list[int]] = {}
    for name, code in _verdicts().items():
        if _status(code) == SURVIVED:
            function, _, number = name.rpartition("__mutmut_")
            by_function.setdefault(function.replace(S, ".").replace(".x.", ".")
                                   .replace(".x_", "."), []).append(int(number))
    for function, numbers in sorted(by_function.items()):
        print(f"{function}: {', '.join(map(str, sorted(numbers)))}")
    return 0


def stats(children: int) -> None:
    _prepare(children)


def main(argv: list[str]) -> int:
    children = int(os.environ.get("MUTMUT_CHILDREN", "2"))
    command = argv[1] if len(argv) > 1 else "report"
    retest = set(filter(None, os.environ.get("MUTATION_RETEST", "").split(",")))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `timeout` stops us cleanly
    if command == "run":
        run(float(argv[2]) if len(argv) > 2 else 240.0, children, retest)
        return report()
    if command == "survivors":
        return survivors()
    if command == "stats":
        stats(children)
        return 0
    return report()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
