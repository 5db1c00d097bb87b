"""The Xero emulator's contact groups (where a bookkeeper pauses a customer for ar-sync).

Modelled on the Xero Accounting API (developer.xero.com, Contact Groups) and XeroAPI/
Xero-OpenAPI xero_accounting.yaml (`ContactGroup`: Name, Status, ContactGroupID, Contacts):

- `GET /ContactGroups` lists the groups (`where`, `order`) **without** their members: the
  schema says `Contacts` are "Returned on GETs when the ContactGroupID is supplied in the
  URL"; xero-python's `get_contact_groups` docstring, "Retrieves the contact Id and name of
  each contact group"; xeroizer PR #178 (a group's contacts come with `find(id)` only);
  calcinai/xero-php #180 (the same).
- `GET /ContactGroups/{id}` answers the group with `Contacts` (ContactID and Name).
- "Only contact groups with a status of ACTIVE are returned on GETs" (ContactGroup.Status:
  ACTIVE or DELETED). Both need the `accounting.contacts` or `accounting.contacts.read` scope.
Groups are made by the bookkeeper in Xero; tests do it with `XeroEmulator.group(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ar_sync_emulators.xero.model import Organisation, stable_id
from ar_sync_emulators.xero.where import GUID, parse_where

ROUTES = ("GET /api.xro/2.0/ContactGroups", "GET /api.xro/2.0/ContactGroups/{id}")
WHERE_FIELDS: dict[str, type] = {"Name": str, "Status": str, "ContactGroupID": GUID}


@dataclass
class XGroup:
    id: str
    name: str
    status: str = "ACTIVE"
    contact_ids: list[str] = field(default_factory=list)


def groups_of(org: Organisation) -> dict[str, XGroup]:
    """The organisation's groups, kept on it (created on first use)."""
    found: dict[str, XGroup] = org.contact_groups
    return found


def add_to_group(org: Organisation, name: str, contact_id: str) -> XGroup:
    """Put a contact in the ACTIVE group `name` (made if missing), as the Xero UI does."""
    groups = groups_of(org)
    group = next((g for g in groups.values() if g.name == name and g.status == "ACTIVE"),
                 None)
    if group is None:
        group = XGroup(stable_id(org.tenant_id, "group", name, str(len(groups))), name)
        groups[group.id] = group
    if contact_id not in group.contact_ids:
        group.contact_ids.append(contact_id)
    return group


def _json(org: Organisation, group: XGroup, *, members: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": group.name, "Status": group.status,
                           "ContactGroupID": group.id}
    if members:
        out["Contacts"] = [{"ContactID": cid, "Name": org.contacts[cid].name}
                           for cid in group.contact_ids if cid in org.contacts]
    return out


def route(org: Organisation, template: str, obj_id: str | None,
          query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """(status, payload) of a contact-group read; (404, {}) for an unknown or deleted id."""
    active = [g for g in groups_of(org).values() if g.status == "ACTIVE"]
    if template == "GET /api.xro/2.0/ContactGroups":
        predicate = parse_where(query.get("where", query.get("Where", "")), WHERE_FIELDS)
        rows = [g for g in active if predicate({"Name": g.name, "Status": g.status,
                                                "ContactGroupID": g.id})]
        return 200, {"ContactGroups": [_json(org, g, members=False) for g in rows]}
    group = next((g for g in active if g.id == (obj_id or "").lower()), None)
    if group is None:
        return 404, {}
    return 200, {"ContactGroups": [_json(org, group, members=True)]}
