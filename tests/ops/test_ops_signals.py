"""`sandbox serve` stops on SIGTERM whichever of its threads the kernel hands the signal to.

A process-directed signal goes to any thread that does not block it; Python runs its handler
only when the main thread next runs bytecode. The sandbox's main thread once slept 3600 s at
a time, so a SIGTERM that landed on a server thread (likelier after SIGSTOP/SIGCONT, with
request threads about) went unnoticed: the frozen-platform test's sandbox did not stop in
120 s. Here the signal is sent to one server thread on purpose (tgkill)."""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import time
from pathlib import Path

import pytest

from .ops_helpers import sandbox

_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


def _tgkill(pid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_TGKILL, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.skipif(_TGKILL is None or not Path("/proc/self/task").is_dir(),
                    reason="tgkill and /proc are Linux x86_64/aarch64")
def test_sigterm_to_any_thread_stops_the_sandbox(tmp_path: Path) -> None:
    with sandbox(tmp_path) as served:
        pid = served.process.pid
        others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
        assert others, "the sandbox serves from threads"
        _tgkill(pid, others[0], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while served.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = served.process.poll() is not None
        if not stopped:
            served.process.kill()
        assert stopped, "a SIGTERM handed to a server thread did not stop the sandbox in 20 s"
        assert served.process.returncode == 0
