"""API calls per full and per incremental run, against the lower bound, on both platforms.

    .venv/bin/python bench/bench_calls.py [--platform quickbooks|xero|both] [--invoices 10000]

For the demo company and a large generated company (10,000 invoices by default), each
platform's connector runs through the real OAuth flow, `run_tenant` and the SDKs against its
emulator (rate limits lifted, so the figures count calls rather than waiting). Lower bound =
pages needed + writes done; the ratio is printed per run. See bench_calls_quickbooks.py and
bench_calls_xero.py for what each counts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_calls_quickbooks
import bench_calls_xero

from ar_sync_emulators.books import demo_company, large_company

MEASURES = {"quickbooks": bench_calls_quickbooks.measure, "xero": bench_calls_xero.measure}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--platform", choices=[*MEASURES, "both"], default="both")
    parser.add_argument("--invoices", type=int, default=10_000)
    args = parser.parse_args()
    for platform, measure in MEASURES.items():
        if args.platform not in (platform, "both"):
            continue
        print(f"== {platform}")
        for line in measure("demo company", demo_company()):
            print(line)
        if args.invoices:
            for line in measure(f"large company ({args.invoices:,})",
                                large_company(args.invoices)):
                print(line)
        if platform == "xero":  # a real-looking organisation: GST, discounts, lock date
            for line in bench_calls_xero.measure("NZ GST organisation (500)", None,
                                                 nz_invoices=500):
                print(line)


if __name__ == "__main__":
    main()
