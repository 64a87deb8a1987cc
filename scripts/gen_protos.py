"""Generate the Python stubs in client/arbiter/v1 from protos/ (the only writer).

    python scripts/gen_protos.py          regenerate the committed stubs
    python scripts/gen_protos.py --check  fail if the committed stubs drifted

The stubs are committed so that installing the client needs no code
generator. grpcio-tools is pinned exactly because its output changes between
releases; a different version would show up as drift everywhere.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "client"
PACKAGE_DIR = Path("arbiter") / "v1"
PINNED_GRPCIO_TOOLS = "1.85.1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generate(out_root: Path) -> None:
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def _generated_files(root: Path) -> set[str]:
    directory = root / PACKAGE_DIR
    return {p.name for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES)} if directory.exists() else set()


def _check_tools_version() -> None:
    installed = importlib.metadata.version("grpcio-tools")
    if installed != PINNED_GRPCIO_TOOLS:
        raise SystemExit(f"grpcio-tools {installed} is installed; the stubs are made with {PINNED_GRPCIO_TOOLS}")


def regenerate() -> None:
    """Rewrite client/arbiter/v1 from the protos, removing stale stubs."""
    _check_tools_version()
    with tempfile.TemporaryDirectory() as tmp:
        _generate(Path(tmp))
        target = OUT_ROOT / PACKAGE_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name in _generated_files(OUT_ROOT) - _generated_files(Path(tmp)):
            (target / name).unlink()
        for name in _generated_files(Path(tmp)):
            shutil.copyfile(Path(tmp) / PACKAGE_DIR / name, target / name)
    print(f"generated stubs in {OUT_ROOT / PACKAGE_DIR}")


def check() -> int:
    """Return 0 when the committed stubs equal a fresh generation, else 1."""
    _check_tools_version()
    with tempfile.TemporaryDirectory() as tmp:
        _generate(Path(tmp))
        fresh, committed = _generated_files(Path(tmp)), _generated_files(OUT_ROOT)
        problems = [f"missing: {name}" for name in sorted(fresh - committed)]
        problems += [f"stale (no proto makes it): {name}" for name in sorted(committed - fresh)]
        problems += [
            f"differs: {name}"
            for name in sorted(fresh & committed)
            if not filecmp.cmp(Path(tmp) / PACKAGE_DIR / name, OUT_ROOT / PACKAGE_DIR / name, shallow=False)
        ]
    if problems:
        print("generated stubs drifted from protos/ (run `make proto`):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print("generated stubs are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    args = parser.parse_args()
    if args.check:
        return check()
    regenerate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
