"""`ar-sync sandbox serve --state DIR`: emulator state and ports that survive a restart.

Generic on purpose, so the emulators need no code for it: an emulator's state is every
attribute that is plain data (rows, organisations, tokens, recorded idempotent answers),
found by walking its attributes and its helpers' (identity, idempotency cache); what is not
data — locks, clocks, servers, rate limiters, counters and injected faults — belongs to the
running process and is left as the new process built it. The state is pickled atomically
(temporary file, then rename) **before the emulator answers any request that may have changed
it** (every write, token grant and authorization code: `base.acknowledge` calls the
`persist_now` hook set here), so a SIGKILLed sandbox never loses what it acknowledged, as a
platform never does; also every SAVE_EVERY seconds while serving and once at shutdown. It is
read back with an unpickler that only builds ar_sync and standard data types, so a state
file cannot run code. (Durable against the process dying; a power loss may still lose what
the OS had not written out: no fsync.)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

SAVE_EVERY = 2.0  # seconds between snapshots while serving
RUNTIME = frozenset({"faults", "counters", "limiter", "app_limiter", "clock", "url",
                     "_server", "_lock", "persist_now"})  # process-bound, never persisted
_SAVING: dict[Path, threading.Lock] = {}  # one save at a time per state file
_SAVING_LOCK = threading.Lock()
_SAFE_MODULES = ("datetime", "decimal", "collections", "zoneinfo", "uuid")
_SAFE_BUILTINS = frozenset({"set", "frozenset", "dict", "list", "tuple", "bytearray",
                            "bytes", "str", "int", "float", "bool", "complex", "slice",
                            "range", "object"})


class _Nested:
    """The snapshot of a helper object (e.g. the Xero identity), restored attribute-wise."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return not callable(value) or isinstance(value, type)


def snapshot(obj: Any) -> dict[str, Any]:
    """The data attributes of `obj`, recursing into helpers that hold data and locks."""
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if name in RUNTIME or callable(value):
            continue
        if _picklable(value):
            state[name] = value
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            nested = snapshot(value)
            if nested:
                state[name] = _Nested(nested)
    return state


def restore(obj: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        if isinstance(value, _Nested):
            target = getattr(obj, name, None)
            if target is not None:
                restore(target, value.state)
        elif hasattr(obj, name):  # an attribute the emulator no longer has is dropped
            setattr(obj, name, value)


class _SafeUnpickler(pickle.Unpickler):
    """Builds only types: from ar_sync and the emulators, a few standard data modules and data
    builtins."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith(("ar_sync.", "ar_sync_emulators.")) or module in _SAFE_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"state file refers to {module}.{name}: not allowed")


def save(path: Path, emulator: Any) -> None:
    """The emulator's state into `path`, whole or not at all; saves of one file one at a
    time (request threads and the periodic saver may save together)."""
    with _SAVING_LOCK:
        saving = _SAVING.setdefault(path, threading.Lock())
    with saving:
        lock = getattr(emulator, "_lock", None) or threading.Lock()
        with lock:
            data = pickle.dumps(snapshot(emulator), protocol=5)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def load(path: Path, emulator: Any) -> bool:
    """Restore `emulator` from `path`; False when there is no state yet."""
    if not path.is_file():
        return False
    try:
        state = _SafeUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path}: not a readable emulator state ({exc})") from exc
    lock = getattr(emulator, "_lock", None) or threading.Lock()
    with lock:
        restore(emulator, state)
    return True


def saved_ports(folder: Path) -> dict[str, int]:
    path = folder / "ports.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in data.items()}


def save_ports(folder: Path, ports: dict[str, int]) -> None:
    (folder / "ports.json").write_text(json.dumps(ports, indent=2) + "\n", encoding="utf-8")


@contextmanager
def persisted(folder: Path, emulators: dict[str, Any]) -> Iterator[dict[str, bool]]:
    """Restore each emulator from `folder` (yields which were restored), then keep saving
    until the block ends, and save once more on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    restored = {name: load(folder / f"{name}.state", emu) for name, emu in emulators.items()}
    for name, emu in emulators.items():  # each change saved before it is acknowledged
        emu.persist_now = partial(save, folder / f"{name}.state", emu)
    stop = threading.Event()

    def keep_saving() -> None:
        while not stop.wait(SAVE_EVERY):
            for name, emu in emulators.items():
                save(folder / f"{name}.state", emu)

    saver = threading.Thread(target=keep_saving, name="sandbox-state", daemon=True)
    saver.start()
    try:
        yield restored
    finally:
        stop.set()
        saver.join(timeout=10)
        for name, emu in emulators.items():
            save(folder / f"{name}.state", emu)
            emu.persist_now = None
