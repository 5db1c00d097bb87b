"""The deployment zip, built as docs/deploy.md builds it, proven in a fresh interpreter.

The bundle is built once per run with pip against the package index (about 25 s with pip's
cache warm). Then a CPython 3.12 (Lambda's runtime; found on PATH or under pyenv, else this
interpreter with a bundle built for its version) started with `-I -S` gets only the zip's
contents plus boto3/botocore/s3transfer (what Lambda provides) on sys.path, imports every
handler serverless.yml names, loads both connectors through their entry points, and answers an
anonymous /connect with 401 through the real handler.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ar_sync.aws import bundle

ROOT = Path(__file__).resolve().parents[2]
SLS: dict[str, Any] = yaml.safe_load((ROOT / "serverless.yml").read_text())
HANDLERS = sorted({fn["handler"] for fn in SLS["functions"].values()})
RUNTIME_LIBS = ("boto3", "botocore", "s3transfer")


def _python312() -> str | None:
    """A working CPython 3.12: pyenv's install, else one on PATH (pyenv's shim may not run)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.12*/bin/python3.12")) if pyenv.is_dir() else []
    for found in [*map(str, reversed(candidates)), shutil.which("python3.12")]:
        if found and subprocess.run([found, "-I", "-S", "-c", "import zlib"],
                                    capture_output=True, check=False).returncode == 0:
            return found
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bundle.Bundle, str]]:
    """(the bundle, the interpreter to prove it with)."""
    interpreter = _python312()
    version = bundle.PYTHON_VERSION
    if interpreter is None:  # no 3.12 here: prove the same build for this interpreter
        interpreter, version = sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}"
    out = tmp_path_factory.mktemp("bundle")
    saved = bundle.PYTHON_VERSION
    bundle.PYTHON_VERSION = version
    try:
        yield bundle.build(ROOT, out, "x86_64"), interpreter
    finally:
        bundle.PYTHON_VERSION = saved


@pytest.fixture(scope="module")
def unpacked(built: tuple[bundle.Bundle, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(built[0].artifact) as zf:
        zf.extractall(task)
    return task


def _runtime_dir(tmp: Path) -> Path:
    """What Lambda's python3.12 runtime adds: boto3 and botocore (taken from this venv)."""
    runtime = tmp / "runtime"
    runtime.mkdir(exist_ok=True)
    for name in RUNTIME_LIBS:
        source = Path(__import__(name).__file__ or "").parent
        if not (runtime / name).exists():
            (runtime / name).symlink_to(source, target_is_directory=True)
    return runtime


PROBE = r"""
import importlib, json, sys
task, runtime, handlers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [task, runtime]
import os
os.environ.update({"AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_SERVICE_NAME": "ar-sync"})
loaded = {}
for handler in handlers:
    module, _, attr = handler.rpartition(".")
    loaded[handler] = callable(getattr(importlib.import_module(module.replace("/", ".")), attr))
from importlib.metadata import entry_points
from ar_sync.sync.connector import load_plugin
plugins = {ep.name: ep.value for ep in entry_points(group="ar_sync.connectors")}
kinds = {name: type(load_plugin(name)).__name__ for name in plugins}
import pathlib, ar_sync, holidays, yaml
from ar_sync.rules.policy import load_policy
rules = sorted((pathlib.Path(ar_sync.__file__).parent / "_rules").glob("*.yaml"))
policies = [type(load_policy(p)).__name__ for p in rules]
gb = len(holidays.country_holidays("GB", years=2026))  # its locale files are in the zip
from babel.numbers import format_currency  # without babel.messages
import charset_normalizer  # its pure modules, without the compiled copies
money = format_currency(1234.5, "EUR", locale="en_IE")
guessed = charset_normalizer.from_bytes("Grüße, Zoë".encode("latin-1")).best().encoding
from ar_sync.aws import http
event = {"version": "2.0", "routeKey": "GET /connect/{platform}", "rawPath": "/connect/xero",
         "rawQueryString": "business=victim", "headers": {"host": "x"},
         "queryStringParameters": {"business": "victim"}, "pathParameters": {"platform": "xero"},
         "requestContext": {"http": {"method": "GET", "path": "/connect/xero",
                                     "sourceIp": "203.0.113.9"}, "stage": "$default",
                            "requestId": "r", "routeKey": "GET /connect/{platform}"},
         "isBase64Encoded": False}
class Ctx:
    function_name = "connect"; memory_limit_in_mb = 512; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:connect"
anonymous = http.handler(event, Ctx())["statusCode"]
outside = sorted({m.__file__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and "site-packages" in m.__file__
                  and not m.__file__.startswith((task, runtime))})
print(json.dumps({"python": sys.version.split()[0], "handlers": loaded, "plugins": plugins,
                  "kinds": kinds, "anonymous_connect": anonymous, "outside": outside,
                  "policies": policies, "gb_holidays": gb, "libyaml": yaml.__with_libyaml__,
                  "money": money, "guessed": guessed,
                  "ar_sync": importlib.import_module("ar_sync").__file__}))
"""


def test_bundle_loads_every_handler_and_both_plugins_in_a_bare_interpreter(
        built: tuple[bundle.Bundle, str], unpacked: Path, tmp_path: Path) -> None:
    interpreter = built[1]
    runtime = _runtime_dir(tmp_path)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run([interpreter, "-I", "-S", "-B", "-c", PROBE, str(unpacked), str(runtime),
                           json.dumps(HANDLERS)], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if interpreter != sys.executable:
        assert got["python"].startswith(bundle.PYTHON_VERSION)
    assert got["handlers"] == {h: True for h in HANDLERS}
    assert set(got["plugins"]) == {"quickbooks", "xero"}
    assert all(kind for kind in got["kinds"].values())
    assert got["anonymous_connect"] == 401
    assert got["policies"] and set(got["policies"]) == {"Policy"}  # every shipped rule set
    assert got["gb_holidays"] >= 5 and got["libyaml"] is False
    assert got["money"] == "€1,234.50" and got["guessed"]
    assert got["outside"] == []  # nothing came from a site-packages outside the zip
    assert got["ar_sync"].startswith(str(unpacked))


def test_bundle_contents_and_size(built: tuple[bundle.Bundle, str], unpacked: Path) -> None:
    the_bundle = built[0]
    assert Path(the_bundle.artifact).name == \
        f"ar-sync-lambda-x86_64-{the_bundle.sha256[:16]}.zip"
    manifest = json.loads((Path(the_bundle.artifact).parent / bundle.MANIFEST).read_text())
    assert manifest["artifact"] == the_bundle.artifact and manifest["arch"] == "x86_64"
    assert the_bundle.unzipped_bytes <= bundle.MAX_UNZIPPED
    names = {p.name for p in unpacked.iterdir()}
    assert {"ar_sync", "ar_sync_quickbooks", "ar_sync_xero", "xero_python", "quickbooks",
            "intuitlib", "aws_lambda_powertools", "pydantic_core"} <= names
    infos = {n.removesuffix(".dist-info").rsplit("-", 1)[0] for n in names
             if n.endswith(".dist-info")}
    assert {"ar_sync", "xero_python", "python_quickbooks"} <= infos  # entry points kept
    assert not names & {"boto3", "botocore", "s3transfer", "rich", "typer", "setuptools"}
    with zipfile.ZipFile(the_bundle.artifact) as zf:
        infos_ = zf.infolist()
    shipped = [i.filename for i in infos_]
    assert not [n for n in shipped if "__pycache__" in n or n.endswith((".pyc", ".pyi"))]
    assert not [n for n in shipped if n.endswith("direct_url.json")]
    # the emulators and the demo serve tests only; the CLI never runs in Lambda
    assert not [n for n in shipped if n.startswith(("ar_sync_emulators/", "ar_sync/cli/"))]
    assert "ar_sync_emulators" not in names
    assert [i.filename for i in infos_] == sorted(i.filename for i in infos_)
    assert {i.date_time for i in infos_} == {bundle.ZIP_TIME}


def test_zip_bytes_do_not_depend_on_file_times_or_creation_order(tmp_path: Path) -> None:
    def tree(root: Path, names: list[str], mtime: int) -> Path:
        for name in names:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"content of {name}\n")
            os.utime(path, (mtime, mtime))
        return root

    names = ["b/x.py", "a.py", "pkg-1.0.dist-info/entry_points.txt"]
    one = tree(tmp_path / "one", names, 1_000_000)
    two = tree(tmp_path / "two", list(reversed(names)), 1_700_000_000)
    assert bundle.write_zip(one, tmp_path / "1.zip") == bundle.write_zip(two, tmp_path / "2.zip")
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    (two / "a.py").write_text("changed\n")
    bundle.write_zip(two, tmp_path / "3.zip")
    assert (tmp_path / "3.zip").read_bytes() != (tmp_path / "1.zip").read_bytes()


def test_remove_distribution_deletes_what_its_record_lists(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "keep.py").write_text("")
    info = tmp_path / "lib-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("lib/__init__.py,,\nlib-1.0.dist-info/RECORD,,\n"
                                 "../../etc/passwd,,\n")
    assert bundle.remove_distribution(tmp_path, "LIB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.py"]
    assert not bundle.remove_distribution(tmp_path, "lib")


@pytest.mark.slow
def test_two_builds_give_the_same_bytes(tmp_path: Path) -> None:
    """`pytest -m slow tests/aws/test_aws_bundle.py` (two more builds, about a minute)."""
    first = bundle.build(ROOT, tmp_path / "1")
    second = bundle.build(ROOT, tmp_path / "2")
    assert first.sha256 == second.sha256
    assert Path(first.artifact).read_bytes() == Path(second.artifact).read_bytes()
