"""Build the Lambda deployment zip: `python -m ar_sync.aws.bundle --out DIR [--arch x86_64|arm64]`.

Why a command of our own instead of a packaging plugin: the plugin's `slim` mode deleted every
`*.dist-info` (so `entry_points(group="ar_sync.connectors")` found no connector in Lambda), its
cache kept deploying old code, and it could not take a pure-Python sdist with
`--only-binary=:all:`. Here:

1. ar-sync is built into a wheel from the project, and each SDIST_ONLY dependency (pure Python,
   published without a wheel) is built into a wheel first;
2. pip installs that wheel with the Lambda extras into a folder, for CPython 3.12 manylinux of
   the chosen architecture, binary wheels only, versions pinned to the ones installed here (the
   ones the tests ran with);
3. what the Lambda runtime already provides (boto3, botocore, s3transfer) and what never runs
   there (the CLI's libraries, `__pycache__`, type stubs, console scripts, install-time paths)
   is removed, and so is ar-sync's code that is not runtime code (the emulators, the CLI);
   `*.dist-info` is kept;
4. the zip is written in sorted order with fixed timestamps and modes, so the same inputs give
   the same bytes; its SHA-256 is in its name, and DIR/bundle.json tells serverless.yml which
   zip to deploy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

PYTHON_VERSION = "3.12"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
EXTRAS = ("aws", "quickbooks", "xero")
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")  # in Lambda's python3.12 runtime
# Installed but never imported by a handler: the CLI's libraries (ar_sync.cli is the only
# importer; 7.5 MB with pygments), the local console's web server (uvicorn, h11: on Lambda the
# console runs through Mangum) and setuptools, which xero-python declares but never imports.
# The bundle test imports every handler and loads both connectors without them.
NEVER_IMPORTED = ("typer", "click", "shellingham", "rich", "pygments", "markdown-it-py", "mdurl",
                  "uvicorn", "h11", "setuptools")
SDIST_ONLY = ("xero-python",)  # pure Python, no wheel on the package index
# API families of a package the connectors never call (ar_sync_xero uses accounting, identity
# and api_client only); 2.8 MB of generated payroll/finance/project models.
UNUSED_SUBPACKAGES = {"xero_python": ("appstore", "assets", "file", "finance", "payrollau",
                                      "payrollauv2", "payrollnz", "payrolluk", "project"),
                      # Babel's message-catalog tools (extract, compile .po files); messages
                      # format numbers and dates only (babel.numbers, babel.dates)
                      "babel": ("messages",)}
# Files a package tries to import but ar-sync never calls: rules are parsed with the pure-Python
# yaml.SafeLoader (it keeps line numbers for error messages), so PyYAML's libyaml binding is
# dead weight (2.9 MB); `import yaml` falls back to the pure loaders when it is absent.
# charset_normalizer ships mypyc-compiled copies of cd.py and md.py next to the modules
# themselves (0.45 MB); requests only asks it to guess the charset of an answer that declares
# none, and the pure modules answer the same.
UNUSED_FILES = {"yaml": ("_yaml.*.so",), "charset_normalizer": ("cd.*.so", "md.*.so")}
# Babel's CLDR data is 35 MB for ~1,100 locales; messages are written in English, so Lambda
# carries the English locales (en, en_GB, en_NZ, ...) and the root they inherit from (1 MB).
# A rules file with another language's `locale:` is refused there as an unknown locale.
KEPT_LOCALES = ("root.dat", "en.dat", "en_*.dat")
# ar-sync's own code that never runs in Lambda: the local emulators and the demo (tests only),
# and the command line (its libraries are not shipped either).
NOT_RUNTIME_CODE = ("ar_sync_emulators", "ar_sync/cli")
DROP_DIRS = frozenset({"__pycache__", "tests", "bin"})
DROP_SUFFIXES = (".pyc", ".pyi")
DROP_NAMES = frozenset({"direct_url.json"})  # holds the build folder's absolute path
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MAX_UNZIPPED = 40 * 1024 * 1024  # our target; Lambda's own limit is 250 MB
MANIFEST = "bundle.json"


class BundleError(RuntimeError):
    """The bundle cannot be built (the message says which step and why)."""


@dataclass(frozen=True)
class Bundle:
    artifact: str
    arch: str
    sha256: str
    unzipped_bytes: int
    zipped_bytes: int
    files: int


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _run(args: Sequence[str], what: str) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BundleError(f"{what} failed:\n{tail}")


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]


def pinned_versions(skip: Iterable[str] = ()) -> list[str]:
    """`name==version` for every distribution installed here (the tested versions)."""
    skipped = {_canonical(s) for s in skip}
    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) not in skipped and "+" not in dist.version:
            pins[_canonical(name)] = f"{_canonical(name)}=={dist.version}"
    return [pins[k] for k in sorted(pins)]


def _pin_for(name: str) -> str:
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def build_wheels(project: Path, wheelhouse: Path) -> Path:
    """ar-sync's own wheel and a wheel for each SDIST_ONLY dependency; returns ar-sync's."""
    _run(_pip("wheel", "--no-deps", "--quiet", "-w", str(wheelhouse), str(project)),
         "building the ar-sync wheel")
    for name in SDIST_ONLY:
        _run(_pip("wheel", "--no-deps", "--quiet", f"--no-binary={name}", "-w",
                  str(wheelhouse), _pin_for(name)), f"building a wheel of {name}")
    (own,) = sorted(wheelhouse.glob("ar_sync-*.whl"))
    return own


def install(wheel: Path, wheelhouse: Path, target: Path, arch: str) -> None:
    """pip install the wheel with the Lambda extras for CPython 3.12 manylinux `arch`."""
    constraints = target.parent / "constraints.txt"
    constraints.write_text("\n".join(pinned_versions(skip=["ar-sync"])) + "\n")
    _run(_pip("install", "--quiet", "--no-compile", "--target", str(target),
              "--platform", PLATFORMS[arch], "--python-version", PYTHON_VERSION,
              "--implementation", "cp", "--only-binary=:all:", "--find-links", str(wheelhouse),
              "--constraint", str(constraints), f"{wheel}[{','.join(EXTRAS)}]"),
         f"installing ar-sync for {PLATFORMS[arch]} / CPython {PYTHON_VERSION}")


def _dist_infos(target: Path) -> dict[str, Path]:
    out = {}
    for info in target.glob("*.dist-info"):
        name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        out[_canonical(name)] = info
    return out


def remove_distribution(target: Path, name: str) -> bool:
    """Delete every file a distribution's RECORD lists, then its dist-info."""
    info = _dist_infos(target).get(_canonical(name))
    if info is None:
        return False
    for line in (info / "RECORD").read_text().splitlines():
        path = (target / line.split(",", 1)[0]).resolve()
        if path.is_relative_to(target.resolve()) and path.is_file():
            path.unlink()
    shutil.rmtree(info)
    for folder in sorted(target.iterdir()):  # package folders left empty
        if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
            shutil.rmtree(folder)
    return True


def prune(target: Path) -> None:
    """Drop what never runs in Lambda; keep every `*.dist-info` (entry points live there)."""
    for name in (*RUNTIME_PROVIDED, *NEVER_IMPORTED):
        remove_distribution(target, name)
    for folder in NOT_RUNTIME_CODE:
        shutil.rmtree(target / folder, ignore_errors=True)
    for package, subpackages in UNUSED_SUBPACKAGES.items():
        for sub in subpackages:
            shutil.rmtree(target / package / sub, ignore_errors=True)
    for package, patterns in UNUSED_FILES.items():
        for pattern in patterns:
            for path in sorted((target / package).glob(pattern)):
                path.unlink()
    locales = target / "babel" / "locale-data"
    if locales.is_dir():
        keep = {p for pattern in KEPT_LOCALES for p in locales.glob(pattern)}
        for path in sorted(locales.glob("*.dat")):
            if path not in keep:
                path.unlink()
    for path in sorted(target.rglob("*"), reverse=True):
        if not path.exists():
            continue
        if path.is_dir() and path.name in DROP_DIRS and not path.name.endswith(".dist-info"):
            shutil.rmtree(path)
        elif path.is_file() and (path.suffix in DROP_SUFFIXES or path.name in DROP_NAMES):
            path.unlink()
    for record in sorted(target.glob("*.dist-info/RECORD")):  # list only what is shipped
        lines = record.read_text().splitlines()
        kept = [ln for ln in lines if (target / ln.split(",", 1)[0]).resolve().is_file()]
        record.write_text("".join(f"{ln}\n" for ln in kept))


def write_zip(source: Path, zip_path: Path) -> tuple[int, int]:
    """Deterministic zip of `source`: sorted names, fixed time and modes. (bytes in, files)."""
    files = sorted((p for p in source.rglob("*") if p.is_file()),
                   key=lambda p: p.relative_to(source).as_posix())
    total = 0
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.create_system = 3  # unix, whatever machine built it
            data = path.read_bytes()
            total += len(data)
            zf.writestr(info, data, compresslevel=9)
    return total, len(files)


def sizes_by_top_level(source: Path) -> list[tuple[str, int]]:
    """Bytes per top-level folder or file, largest first (what to look at when it grows)."""
    sizes: Counter[str] = Counter()
    for path in source.rglob("*"):
        if path.is_file():
            sizes[path.relative_to(source).parts[0]] += path.stat().st_size
    return sizes.most_common()


def build(project: Path, out: Path, arch: str = "x86_64") -> Bundle:
    if arch not in PLATFORMS:
        raise BundleError(f"--arch must be one of {', '.join(PLATFORMS)}")
    if not (project / "pyproject.toml").is_file():
        raise BundleError(f"{project} has no pyproject.toml (run from the repository root)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ar-sync-bundle-") as tmp:
        work = Path(tmp)
        wheelhouse, target = work / "wheels", work / "site"
        own = build_wheels(project, wheelhouse)
        install(own, wheelhouse, target, arch)
        prune(target)
        unsigned = work / "bundle.zip"
        unzipped, count = write_zip(target, unsigned)
        digest = hashlib.sha256(unsigned.read_bytes()).hexdigest()
        final = out / f"ar-sync-lambda-{arch}-{digest[:16]}.zip"
        shutil.copyfile(unsigned, final)
        largest = sizes_by_top_level(target)[:8]
    bundle = Bundle(artifact=str(final), arch=arch, sha256=digest, unzipped_bytes=unzipped,
                    zipped_bytes=final.stat().st_size, files=count)
    (out / MANIFEST).write_text(json.dumps({**asdict(bundle), "largest": largest}, indent=2)
                                + "\n")
    return bundle


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ar_sync.aws.bundle",
                                     description="Build the Lambda deployment zip.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the zip")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--project", type=Path, default=Path.cwd(),
                        help="the ar-sync repository (default: the current folder)")
    args = parser.parse_args(argv)
    try:
        bundle = build(args.project.resolve(), args.out.resolve(), args.arch)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = json.loads((args.out / MANIFEST).read_text())
    print(f"{bundle.artifact}")
    print(f"  {bundle.files} files, unzipped {_mb(bundle.unzipped_bytes)}, "
          f"zipped {_mb(bundle.zipped_bytes)}, sha256 {bundle.sha256}")
    print("  largest: " + ", ".join(f"{name} {_mb(size)}" for name, size in manifest["largest"]))
    if bundle.unzipped_bytes > MAX_UNZIPPED:
        print(f"warning: over the {_mb(MAX_UNZIPPED)} target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
