"""`go-live` changes only the fields it owns (issue 20): it used to write back the whole
connection row it had read, so a reconnect landing in between (a new token row, a new name)
was lost. Both backends, with the reconnect injected between go-live's read and its write."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ar_sync.sync.connector import Connection
from ar_sync.sync.store import StoreConflictError

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _company(store: Any) -> str:
    cid = f"xero:{uuid.uuid4()}"
    store.save_connection(Connection(id=cid, platform="xero", external_id=cid[5:], name="Old",
                                     business_id="biz", created_at=T0, token_id="grant:1"))
    return cid


def test_go_live_keeps_a_reconnect_written_meanwhile(store: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cid = _company(store)
    read = store.get_connection
    raced: list[Connection] = []

    def racing_read(connection_id: str) -> Connection | None:
        current = read(connection_id)
        if current is not None and not raced:  # the reconnect lands after this read
            raced.append(current.model_copy(update={"token_id": "grant:2", "name": "New"}))
            store.save_connection(raced[0])
        return current

    monkeypatch.setattr(store, "get_connection", racing_read)
    updated = store.update_connection(cid, {"mode": "preview", "go_live": date(2026, 12, 1)})
    stored = read(cid)
    assert stored == updated
    assert (stored.token_id, stored.name) == ("grant:2", "New")  # the reconnect's
    assert (stored.mode, stored.go_live) == ("preview", date(2026, 12, 1))  # go-live's


def test_update_of_a_missing_connection_and_a_row_that_never_settles(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.update_connection("xero:nope", {"mode": "live"}) is None
    cid = _company(store)
    read = store.get_connection
    turn = iter(range(100))

    def always_racing(connection_id: str) -> Connection | None:
        current = read(connection_id)
        store.save_connection(current.model_copy(update={"name": f"v{next(turn)}"}))
        return current

    monkeypatch.setattr(store, "get_connection", always_racing)
    with pytest.raises(StoreConflictError):
        store.update_connection(cid, {"mode": "preview"})
    assert read(cid).mode == "live"  # nothing of go-live was written over a newer row


def test_company_mail_is_sealed_at_rest_on_both_backends(backend: Any) -> None:
    """A company's own sending settings (issue 20), stored like its tokens."""
    from ar_sync.sync.company_store import CompanyMail

    cid = _company(backend.store)
    secret = f"smtp-{uuid.uuid4().hex}"
    assert backend.store.company_mail(cid) is None
    mail = CompanyMail(from_address="Co <ar@co.example>", smtp_password=secret)
    backend.store.save_company_mail(cid, mail)
    assert backend.store.company_mail(cid) == mail
    raw = backend.raw_dump()
    assert secret not in raw and "ar@co.example" not in raw
