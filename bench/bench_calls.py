"""API calls per full and per incremental run, against the lower bound, on both platforms.

    .venv/bin/python bench/bench_calls.py [--platform quickbooks|xero|both]
                                          [--invoices 500,1000,10000]

For the demo company and generated companies of each size (500, 1,000 and 10,000 invoices by
default), each
platform's connector runs through the real OAuth flow, `run_tenant` and the SDKs against its
emulator (rate limits lifted, so the figures count calls rather than waiting). Lower bound =
pages needed + writes done (+ the reads each platform makes unavoidable: see
bench_calls_quickbooks.py and bench_calls_xero.py for what each counts); the ratio is printed per
run, and the first full runs again in a table at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_calls_quickbooks
import bench_calls_xero
from bench_runs import FirstRun, summary_table

from ar_sync_emulators.books import demo_company, large_company

MEASURES = {"quickbooks": bench_calls_quickbooks.measure, "xero": bench_calls_xero.measure}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--platform", choices=[*MEASURES, "both"], default="both")
    parser.add_argument("--invoices", default="500,1000,10000",
                        help="comma-separated company sizes (0: the demo company only)")
    args = parser.parse_args()
    sizes = [int(n) for n in str(args.invoices).split(",") if int(n) > 0]
    summary: list[FirstRun] = []
    for platform, measure in MEASURES.items():
        if args.platform not in (platform, "both"):
            continue
        print(f"== {platform}", flush=True)
        for line in measure("demo company", demo_company(), summary=summary):
            print(line, flush=True)
        for size in sizes:
            for line in measure(f"large company ({size:,})", large_company(size),
                                summary=summary):
                print(line, flush=True)
        if platform == "xero":  # a real-looking organisation: GST, discounts, lock date
            for line in bench_calls_xero.measure("NZ GST organisation (500)", None,
                                                 nz_invoices=500, summary=summary):
                print(line, flush=True)
    for line in summary_table(summary):
        print(line)


if __name__ == "__main__":
    main()
