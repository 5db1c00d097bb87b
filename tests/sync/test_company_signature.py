"""Rules without a company_name speak as the company the platform names: the console's
preview of a freshly connected sandbox company read "A friendly reminder from : $19,130.39"
and a subject "Payment reminder from " before."""

from __future__ import annotations

from pathlib import Path

from ar_sync.rules.policy import load_policy, parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company import tenant_setup
from ar_sync.sync.mail import mail_rules

from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION


def test_the_platforms_company_name_signs_rules_without_one(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    named = CONNECTION.model_copy(update={"name": "Harbour & Vine Trading LLC"})
    store.save_connection(named)
    assert load_policy("email").company_name == ""
    for policy in (load_policy("email"), None):  # a caller's rules, or the connection's
        setup = tenant_setup(store, named, policy, None)
        assert setup.policy.company_name == "Harbour & Vine Trading LLC"
        assert mail_rules(setup.policy).house.company == "Harbour & Vine Trading LLC"
    own = parse_policy("extends: email\ncompany_name: Harbour & Vine\n", "r.yaml")
    assert tenant_setup(store, named, own, None).policy.company_name == "Harbour & Vine"
    nameless = CONNECTION.model_copy(update={"name": ""})
    assert tenant_setup(store, nameless, load_policy("email"), None).policy.company_name == ""
