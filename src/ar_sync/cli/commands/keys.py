"""`ar-sync keys generate|rotate`: the token encryption key and its rotation (docs/deploy.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ar_sync.cli.app import app, console
from ar_sync.cli.common import DbOption, open_store
from ar_sync.store.crypto import (
    KEY_ENV,
    RotatableStore,
    TokenCipher,
    key_file,
    parse_keys,
    rotate_tokens,
    write_key_file,
)

keys_app = typer.Typer(help="Generate and rotate the key that encrypts OAuth tokens at rest.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def generate_cmd() -> None:
    """Print a new Fernet key (put it first in the key list, then run `keys rotate`)."""
    print(TokenCipher.generate_key().decode())


@keys_app.command("rotate")
def rotate_cmd(
    db: DbOption = None,
    aws: Annotated[bool, typer.Option("--aws", help="the DynamoDB store named by "
                                      "AR_SYNC_TENANTS_TABLE etc., key from AR_SYNC_KEY_PARAMETER"
                                      )] = False,
) -> None:
    """Re-encrypt every stored token set with the first key of the key list."""
    store: RotatableStore
    if aws:
        from ar_sync.aws import config

        store = config.store()
        local = None
    else:
        store = local = open_store(db)
    rewritten, missing = rotate_tokens(store)
    console.print(f"re-encrypted {rewritten} token set(s) with the newest key"
                  + (f"; {missing} connection(s) without tokens" if missing else ""))
    if local is not None:
        _follow_key_file(local.path.parent)
    console.print(f"the older keys in {KEY_ENV} / the key parameter can now be removed")


def _follow_key_file(data_dir: Path) -> None:
    """A rotation through AR_SYNC_SECRET_KEY must not leave the key file with keys that no
    longer open the tokens: a later run without the variable would read the file."""
    material = os.environ.get(KEY_ENV)
    path = key_file(data_dir)
    if not material or not path.exists():
        return
    if parse_keys(path.read_bytes()) == parse_keys(material):
        return
    write_key_file(data_dir, material)
    console.print(f"the key file {path} now holds the keys of {KEY_ENV} (newest first), so "
                  "runs without the variable read the tokens too", highlight=False)
