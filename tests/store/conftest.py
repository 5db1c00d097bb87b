"""Store backends for the contract suite: SQLite (a file) and DynamoDB (moto server, real HTTP)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from ar_sync.store.crypto import TokenCipher
from ar_sync.store.dynamodb.store import DynamoDBStore, create_tables
from ar_sync_emulators.aws import moto_server


@dataclass
class Backend:
    name: str
    store: Any
    raw_dump: Callable[[], str]  # all the backend holds, as one who has the disk sees it


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dynamodb_client(moto_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher(TokenCipher.generate_key())


def _dynamodb(client: Any, cipher: TokenCipher) -> Backend:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    names = (f"{prefix}-tenants", f"{prefix}-ledger", f"{prefix}-locks")
    create_tables(client, *names)
    store = DynamoDBStore(tenants_table=names[0], ledger_table=names[1], locks_table=names[2],
                          cipher=cipher, client=client)

    def dump() -> str:
        return json.dumps([client.scan(TableName=n)["Items"] for n in names], default=str)

    return Backend("dynamodb", store, dump)


def _sqlite(path: Path, cipher: TokenCipher) -> Backend:
    sqlite_mod = pytest.importorskip("ar_sync.store.sqlite.store")
    db = path / "ar-sync.db"
    store = sqlite_mod.SQLiteStore(db, cipher=cipher)

    def dump() -> str:
        return b"".join(p.read_bytes() for p in path.iterdir() if p.is_file()).decode(
            "latin-1")

    return Backend("sqlite", store, dump)


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, cipher: TokenCipher) -> Backend:
    if request.param == "sqlite":
        return _sqlite(tmp_path, cipher)
    return _dynamodb(request.getfixturevalue("dynamodb_client"), cipher)


@pytest.fixture
def store(backend: Backend) -> Any:
    return backend.store
