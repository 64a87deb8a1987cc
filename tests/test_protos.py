"""The protos are a portable, documented contract: plain protoc, arbiter.v1 only, a comment on everything."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTO_FILES = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "arbiter" / "v1").glob("*.proto"))

# Field numbers of the descriptor messages, as SourceCodeInfo.Location paths use them.
FILE_MESSAGE_TYPE, FILE_ENUM_TYPE, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED_TYPE, MESSAGE_ENUM_TYPE = 2, 3, 4
ENUM_VALUE = 2
SERVICE_METHOD = 2


def _protoc(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    import grpc_tools

    bundled = Path(grpc_tools.__file__).parent / "_proto"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{bundled}",
            f"--descriptor_set_out={out}",
            *extra,
            *PROTO_FILES,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path_factory.mktemp("protos") / "arbiter.pb"
    result = _protoc(out, "--include_source_info")
    assert result.returncode == 0, result.stderr
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(out.read_bytes())
    return files


def test_there_are_protos_to_check() -> None:
    assert "arbiter/v1/offers.proto" in PROTO_FILES


def test_protos_compile_with_plain_protoc(tmp_path: Path) -> None:
    out = tmp_path / "plain.pb"

    result = _protoc(out)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert out.stat().st_size > 0


def test_every_file_is_in_package_arbiter_v1(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    assert sorted(f.name for f in descriptor_set.file) == PROTO_FILES
    for file in descriptor_set.file:
        assert file.package == "arbiter.v1", file.name
        assert file.syntax == "proto3", file.name


def test_protos_import_only_google_protobuf(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    local = set(PROTO_FILES)
    for file in descriptor_set.file:
        for dependency in file.dependency:
            assert dependency.startswith("google/protobuf/") or dependency in local, (file.name, dependency)
        assert not file.public_dependency and not file.weak_dependency, file.name


def test_no_file_options_are_set(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    # No py_generic_services, go_package, java_* or any other language-specific option.
    for file in descriptor_set.file:
        assert not file.HasField("options"), (file.name, str(file.options))


def _documented_elements(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(full name, SourceCodeInfo path) of every message, field, enum, enum value, service and RPC."""

    def enum(
        e: descriptor_pb2.EnumDescriptorProto, name: str, path: tuple[int, ...]
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        yield name, path
        for i, value in enumerate(e.value):
            yield f"{name}.{value.name}", (*path, ENUM_VALUE, i)

    def message(
        m: descriptor_pb2.DescriptorProto, name: str, path: tuple[int, ...]
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        yield name, path
        for i, field in enumerate(m.field):
            yield f"{name}.{field.name}", (*path, MESSAGE_FIELD, i)
        for i, nested in enumerate(m.nested_type):
            if not nested.options.map_entry:
                yield from message(nested, f"{name}.{nested.name}", (*path, MESSAGE_NESTED_TYPE, i))
        for i, nested_enum in enumerate(m.enum_type):
            yield from enum(nested_enum, f"{name}.{nested_enum.name}", (*path, MESSAGE_ENUM_TYPE, i))

    for i, m in enumerate(file.message_type):
        yield from message(m, m.name, (FILE_MESSAGE_TYPE, i))
    for i, e in enumerate(file.enum_type):
        yield from enum(e, e.name, (FILE_ENUM_TYPE, i))
    for i, service in enumerate(file.service):
        yield service.name, (FILE_SERVICE, i)
        for j, method in enumerate(service.method):
            yield f"{service.name}.{method.name}", (FILE_SERVICE, i, SERVICE_METHOD, j)


def test_every_element_has_a_leading_comment(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    undocumented = []
    checked = 0
    for file in descriptor_set.file:
        comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}
        for name, path in _documented_elements(file):
            checked += 1
            if not comments.get(path):
                undocumented.append(f"{file.name}: {name}")
    assert checked > 50  # the walk really visited the contract
    assert undocumented == []
