"""The slow exactly-once command: many random fault schedules per platform, replay email-only.

    .venv/bin/python bench/exactly_once.py --schedules 1000 [--platform quickbooks xero fake]
        [--minutes 60] [--start 0]

Each schedule: a fresh company, crashing / stalling / racing runners over one or several days
while the platform fails, throttles and drops answers, then a clean run; the verdict is read
from the platform's own state (notes, fee lines, fee invoices, e-mails), with notes and fees
NOT replayed by key. Prints one line per platform (and progress every 100 schedules); the
README's figures are pasted from this output. Stops cleanly at the time bound and says so.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ar_sync.rules.policy import load_policy
from tests.sync.emulators import EmulatorAdapter, small_company
from tests.sync.harness import Tally, run_schedule, scratch_dir
from tests.sync.test_sync_faults_fake import CONNECTION, FakeAdapter, make_invoices


def run(platform: str, count: int, start: int, deadline: float, rules: str) -> Tally:
    tally = Tally()
    policy = load_policy(rules)
    began = time.monotonic()
    adapter = FakeAdapter() if platform == "fake" else EmulatorAdapter(platform, "email-only")
    try:
        with scratch_dir() as workdir:
            for seed in range(start, start + count):
                if time.monotonic() > deadline:
                    print(f"[{platform}] time bound reached after {tally.schedules} schedules",
                          flush=True)
                    break
                if isinstance(adapter, EmulatorAdapter):
                    adapter.reset(small_company(random.Random(seed)))
                    assert adapter.connection is not None
                    run_schedule(seed, adapter, small_company, policy, workdir, tally,
                                 adapter.connection)
                else:
                    run_schedule(seed, adapter, make_invoices, policy, workdir, tally,
                                 CONNECTION)
                if tally.schedules % 100 == 0:
                    print(f"[{platform}] ... {tally.line()}", flush=True)
    finally:
        if isinstance(adapter, EmulatorAdapter):
            adapter.close()
    took = time.monotonic() - began
    print(f"[exactly-once {platform} replay=email-only rules={rules}] {tally.line()} "
          f"seconds={took:.0f}", flush=True)
    for failure in tally.failures[:10]:
        print(f"  FAILED {failure}", flush=True)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--platform", nargs="+", default=["quickbooks", "xero"],
                        choices=["quickbooks", "xero", "fake"])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--rules", default="default")
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    bad = 0
    for platform in args.platform:
        tally = run(platform, args.schedules, args.start, deadline, args.rules)
        bad += len(tally.failures)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
