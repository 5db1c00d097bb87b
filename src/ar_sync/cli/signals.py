"""Ctrl-C and SIGTERM for long commands: one clean stop, then no second interruption.

SIGTERM (systemd stop, `kill`, a container shutting down) is turned into the same
KeyboardInterrupt as Ctrl-C, so one code path releases the current claim and the locks. The
first signal interrupts; later ones are only counted, so the few store writes that release
what the run holds cannot themselves be cut short. SIGKILL cannot be caught: then the claim's
lease and the lock's TTL (real clock, 5 minutes) let the next run take over and reconcile.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells and cron expect after Ctrl-C


@dataclass
class Signals:
    received: int = 0
    last: int | None = None

    @property
    def interrupted(self) -> bool:
        return self.received > 0


@contextmanager
def interruptible() -> Iterator[Signals]:
    """Within the block, SIGINT/SIGTERM raise KeyboardInterrupt once, then are only noted."""
    seen = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield seen  # signals are delivered to the main thread only
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.received += 1
        seen.last = signum
        if seen.received == 1:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
