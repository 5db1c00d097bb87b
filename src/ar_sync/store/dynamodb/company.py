"""DynamoDBStore's rule versions, pauses and queued requests (see sync/company_store.py).

Items in the tenants table: `rules#<connection>` / `v<10-digit version>` one rules version
(put with attribute_not_exists, so two concurrent applies cannot share a number);
`pause#<connection>` / <pause id> one pause (JSON) and the day it was resumed;
`mail#<connection>` / `settings` the company's sending settings, encrypted (its own
partition, so a role may reach it without the token rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from ar_sync.domain.models import Action
from ar_sync.domain.pauses import Pause
from ar_sync.store.crypto import SecretCipher
from ar_sync.store.dynamodb.codec import encode
from ar_sync.store.sqlite.company import mail_row_id
from ar_sync.sync.company_store import CompanyMail, RulesVersion, StoredPause, matching_pauses

_APPLY_ATTEMPTS = 20


def _version(item: Mapping[str, Any]) -> RulesVersion:
    return RulesVersion(version=int(item["version"]), text=item["text"], source=item["source"],
                        created_at=datetime.fromisoformat(item["created_at"]),
                        note=item.get("note", ""))


class DynamoDBTrustMixin:
    """Mixed into DynamoDBStore, which provides the table names and the helpers below."""

    _tenants: str
    _cipher: SecretCipher

    def _get(self, table: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        raise NotImplementedError  # pragma: no cover - DynamoDBStore's

    def _put(self, table: str, item: Mapping[str, Any], condition: str | None = None,
             values: Mapping[str, Any] | None = None,
             names: Mapping[str, str] | None = None) -> bool:
        raise NotImplementedError  # pragma: no cover - DynamoDBStore's

    def _update(self, table: str, key: Mapping[str, str], update: str, condition: str,
                values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any] | None:
        raise NotImplementedError  # pragma: no cover - DynamoDBStore's

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover - DynamoDBStore's

    def _queue_row(self, action: Action, now: datetime, reason: str,
                   rules_version: int | None) -> bool:
        raise NotImplementedError  # pragma: no cover - DynamoDBStore's

    def _items(self, pk: str, *, newest_first: bool = False,
               limit: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._tenants, "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": encode({":pk": pk}), "ConsistentRead": True,
            "ScanIndexForward": not newest_first}
        if limit is not None:
            kwargs["Limit"] = limit
            return list(self._query(**kwargs))[:limit]
        return list(self._query(**kwargs))

    # rules versions ------------------------------------------------------------------------
    def apply_rules(self, connection_id: str, text: str, *, source: str, now: datetime,
                    note: str = "") -> int:
        for _ in range(_APPLY_ATTEMPTS):
            current = self.current_rules(connection_id)
            version = (current.version if current else 0) + 1
            if self._put(self._tenants, {
                    "pk": f"rules#{connection_id}", "sk": f"v{version:010d}",
                    "version": version, "text": text, "source": source,
                    "created_at": now.isoformat(), "note": note},
                    "attribute_not_exists(pk)"):
                return version
        raise RuntimeError("could not store the rules version (concurrent applies)")

    def rules_versions(self, connection_id: str) -> list[RulesVersion]:
        return [_version(i) for i in self._items(f"rules#{connection_id}")]

    def current_rules(self, connection_id: str) -> RulesVersion | None:
        items = self._items(f"rules#{connection_id}", newest_first=True, limit=1)
        return _version(items[0]) if items else None

    # pauses --------------------------------------------------------------------------------
    def add_pause(self, connection_id: str, pause: Pause) -> str:
        pause_id = uuid.uuid4().hex[:12]
        self._put(self._tenants, {"pk": f"pause#{connection_id}", "sk": pause_id,
                                  "data": pause.model_dump_json()},
                  "attribute_not_exists(pk)")
        return pause_id

    def list_pauses(self, connection_id: str) -> list[StoredPause]:
        out = [StoredPause(id=i["sk"], pause=Pause.model_validate_json(i["data"]),
                           resumed_on=date.fromisoformat(i["resumed_on"])
                           if i.get("resumed_on") else None)
               for i in self._items(f"pause#{connection_id}")]
        return sorted(out, key=lambda s: (s.pause.since, s.id))

    def end_pauses(self, connection_id: str, *, invoice_id: str | None = None,
                   customer_id: str | None = None, on: date) -> int:
        ended = 0
        for stored in matching_pauses(self.list_pauses(connection_id), invoice_id,
                                      customer_id, on):
            done = self._update(self._tenants, {"pk": f"pause#{connection_id}", "sk": stored.id},
                                "SET #r = :on", "attribute_not_exists(#r)",
                                {":on": on.isoformat()}, {"#r": "resumed_on"})
            ended += done is not None
        return ended

    # sending settings ----------------------------------------------------------------------
    def save_company_mail(self, connection_id: str, mail: CompanyMail) -> None:
        blob = self._cipher.seal(mail.model_dump(), bound_to=mail_row_id(connection_id))
        self._put(self._tenants, {"pk": f"mail#{connection_id}", "sk": "settings",
                                  "blob": blob})

    def company_mail(self, connection_id: str) -> CompanyMail | None:
        item = self._get(self._tenants, {"pk": f"mail#{connection_id}", "sk": "settings"})
        if item is None:
            return None
        return CompanyMail.model_validate(
            self._cipher.unseal(item["blob"], bound_to=mail_row_id(connection_id)))

    # queued requests -----------------------------------------------------------------------
    def queue_action(self, action: Action, *, reason: str, now: datetime,
                     rules_version: int | None = None) -> bool:
        return self._queue_row(action, now, reason, rules_version)


__all__ = ["DynamoDBTrustMixin"]
