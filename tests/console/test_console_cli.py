"""`ar-sync console` as a person starts it: a process on 127.0.0.1 that prints a one-time
sign-in link; the link works once; nothing else shows company data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

LINK = re.compile(r"(http://127\.0\.0\.1:(\d+)/login/\S+)")


def test_console_prints_a_one_time_link_and_listens_on_loopback_only(tmp_path: Path) -> None:
    env = {**os.environ, "AR_SYNC_HOME": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ar-sync"), "console", "--port", "0",
                             "--db", str(tmp_path / "c.db")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        found = None
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = LINK.search(line)
        assert found is not None, "no sign-in link printed"
        link, port = found.group(1), int(found.group(2))
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # the server is up once it answers
            try:
                anonymous = requests.get(base + "/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert anonymous.status_code == 401 and "Open the link" in anonymous.text
        browser = requests.Session()
        first = browser.get(link, timeout=5, allow_redirects=False)
        assert first.status_code == 303 and "HttpOnly" in first.headers["set-cookie"]
        assert "No company connected yet" in browser.get(base + "/", timeout=5).text
        assert requests.get(link, timeout=5, allow_redirects=False).status_code == 403
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, check=False).stdout
        if out.strip():  # iproute2 present: the only listener is the loopback address
            assert all("127.0.0.1:" in row for row in out.strip().splitlines()), out
    finally:
        proc.terminate()
        proc.wait(timeout=10)
