"""Hostile checkpoints: each attack class of issue 13 ends fast, in bounded memory, with one
CheckpointError line, in the reader and (exit code 2) through run.py.

Every file is crafted here the way an attacker would: real zip archives and legacy streams
with hand-written pickles, or real torch.save output with a twist."""

import io
import os
import pathlib
import pickle
import pickletools
import resource
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch

from modules.convert.checkpoint import read_checkpoint, read_state_dicts
from modules.errors import CheckpointError

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
VOX = FIXTURES / "tiny-vox" / "tiny-vox-cpk.pth.tar"  # legacy format
SECONDS = 10  # every hostile file must be refused within this (issue 13)


def op(code, arg=b""):
    return code + arg


def binunicode(text):
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def put(i):
    return pickle.LONG_BINPUT + struct.pack("<I", i)


def get(i):
    return pickle.LONG_BINGET + struct.pack("<I", i)


def exponential(depth, builder):
    """x0 = []; x(i+1) = builder(xi, xi): a few bytes per level, 2**depth paths."""
    body = pickle.EMPTY_LIST + put(0) + pickle.POP
    for i in range(1, depth + 1):
        body += pickle.MARK + get(i - 1) + get(i - 1) + builder + put(i) + pickle.POP
    return body + get(depth)


def as_checkpoint(value_ops):
    """A pickle of {'generator': <value>, 'kp_detector': {}}."""
    return (
        pickle.PROTO
        + b"\x02"
        + pickle.EMPTY_DICT
        + binunicode("generator")
        + value_ops
        + pickle.SETITEM
        + binunicode("kp_detector")
        + pickle.EMPTY_DICT
        + pickle.SETITEM
        + pickle.STOP
    )


def write_zip(path, pkl, records=(), compression=zipfile.ZIP_STORED, byteorder=b"little"):
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/byteorder", byteorder)
        for name, data in records:
            archive.writestr(f"archive/data/{name}", data)
    return path


def write_legacy(path, pkl, keys=(), storages=b"", trailing=b""):
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}):
            pickle.dump(header, f, protocol=2)
        f.write(pkl)
        pickle.dump(list(keys), f, protocol=2)
        f.write(storages + trailing)
    return path


def refused(path, *fragments):
    """The reader refuses ``path`` within SECONDS with one line naming it and ``fragments``."""
    start = time.monotonic()
    with pytest.raises(CheckpointError) as error:
        read_state_dicts(path)
    took = time.monotonic() - start
    message = str(error.value)
    assert took < SECONDS, f"{took:.1f} s"
    assert "\n" not in message and os.fspath(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("builder", [pickle.LIST, pickle.TUPLE], ids=["list", "tuple"])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_exponential_pickle(tmp_path, builder, fmt):
    body = exponential(40, builder)  # 2**40 paths in a file of about a kilobyte
    pkl = as_checkpoint(body)
    path = tmp_path / "exp.pth.tar"
    write_zip(path, pkl) if fmt == "zip" else write_legacy(path, pkl)
    assert path.stat().st_size < 2000
    refused(path, "exponential pickle", "limits")


def test_shared_objects_below_the_limit_load_once(tmp_path):
    """Depth 16 (65536 paths) is legal: it loads, and shared lists stay shared."""
    body = exponential(16, pickle.LIST)
    path = write_zip(tmp_path / "shared.pth.tar", as_checkpoint(body))
    checkpoint = read_checkpoint(path)
    top = checkpoint["generator"]
    assert top[0] is top[1]


def test_deep_nesting_and_cycles(tmp_path):
    deep = b"".join([pickle.MARK] * 5000) + pickle.EMPTY_LIST + pickle.LIST * 5000
    refused(write_zip(tmp_path / "deep.pth.tar", as_checkpoint(deep)), "nested more than")
    cycle = pickle.EMPTY_LIST + put(0) + get(0) + pickle.APPEND
    refused(write_zip(tmp_path / "cycle.pth.tar", as_checkpoint(cycle)), "or a cycle")


def test_many_opcodes(tmp_path):
    flat = pickle.EMPTY_LIST + pickle.MARK + pickle.NONE * 410_000 + pickle.APPENDS
    refused(write_zip(tmp_path / "long.pth.tar", as_checkpoint(flat)), "opcodes")


@pytest.mark.parametrize("record", ["data.pkl", "byteorder"])
def test_zip_bomb_small_records(tmp_path, record):
    """A 40 MB (data.pkl) or 1 MB (byteorder) record of zeros compresses to kilobytes; its
    declared size is refused before anything is inflated."""
    path = tmp_path / f"bomb-{record}.pth.tar"
    pkl = as_checkpoint(pickle.EMPTY_DICT)
    if record == "data.pkl":
        pkl = pkl + bytes(40 * 2**20)
    write_zip(path, pkl, compression=zipfile.ZIP_DEFLATED, byteorder=b"little" + bytes(2**20))
    assert path.stat().st_size < 200_000
    refused(path, "declares")


def tensor_pickle(storage_numel, size, stride, dtype="FloatStorage"):
    """{'generator': {'w': tensor}} with one storage '0' of ``storage_numel`` elements."""
    tensor = (
        pickle.GLOBAL
        + b"torch._utils\n_rebuild_tensor_v2\n"
        + pickle.MARK
        + pickle.MARK
        + binunicode("storage")
        + pickle.GLOBAL
        + f"torch\n{dtype}\n".encode()
        + binunicode("0")
        + binunicode("cpu")
        + pickle.LONG1
        + bytes([8])
        + struct.pack("<q", storage_numel)
        + pickle.TUPLE
        + pickle.BINPERSID
        + pickle.BININT1
        + b"\x00"
        + pickle.MARK
        + b"".join(pickle.LONG1 + bytes([8]) + struct.pack("<q", n) for n in size)
        + pickle.TUPLE
        + pickle.MARK
        + b"".join(pickle.LONG1 + bytes([8]) + struct.pack("<q", n) for n in stride)
        + pickle.TUPLE
        + pickle.NEWFALSE
        + pickle.EMPTY_DICT
        + pickle.TUPLE
        + pickle.REDUCE
    )
    return as_checkpoint(pickle.EMPTY_DICT + binunicode("w") + tensor + pickle.SETITEM)


def test_crafted_tensor_pickle_loads(tmp_path):
    """The hand-written tensor pickle is right: a legal one loads, in both formats."""
    values = np.arange(6, dtype=np.float32)
    pkl = tensor_pickle(6, [2, 3], [1, 2])
    for path in (
        write_zip(tmp_path / "ok.zip.pth.tar", pkl, [("0", values.tobytes())]),
        write_legacy(tmp_path / "ok.pth.tar", pkl, ["0"], struct.pack("<q", 6) + values.tobytes()),
    ):
        generator, _ = read_state_dicts(path)
        np.testing.assert_array_equal(generator["w"], values.reshape(3, 2).T)


def test_compressed_tensor_record_bomb(tmp_path):
    """A storage of 300 MiB of zeros, deflated to about 300 KB: refused before inflating."""
    numel = 300 * 2**20 // 4
    path = tmp_path / "bomb-tensor.pth.tar"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", tensor_pickle(numel, [numel], [1]))
        with archive.open("archive/data/0", "w", force_zip64=True) as record:
            zeros = bytes(2**20)
            for _ in range(300):
                record.write(zeros)
    assert path.stat().st_size < 2_000_000
    refused(path, "storage records hold more than")


def test_stride_zero_tensor(tmp_path):
    """625 million elements over a storage of 16 floats (a legal torch view, 2.4 GB copied)."""
    path = tmp_path / "stride0.pth.tar"
    torch.save(
        {"generator": {"w": torch.ones(16)[:1].expand(625_000_000)}, "kp_detector": {}},
        path,
        _use_new_zipfile_serialization=True,
    )
    assert path.stat().st_size < 2000
    refused(path, "strided tensors expand")


def test_tensor_past_its_storage(tmp_path):
    pkl = tensor_pickle(6, [4, 3], [1, 2])
    path = write_zip(tmp_path / "past.pth.tar", pkl, [("0", bytes(24))])
    refused(path, "past the end of its storage")


def test_build_on_a_rebuild_function_is_refused(tmp_path):
    """BUILD could set ``__defaults__`` on a shared rebuild function for every later load."""
    pkl = (
        pickle.PROTO
        + b"\x02"
        + pickle.GLOBAL
        + b"torch._utils\n_rebuild_parameter\n"
        + pickle.EMPTY_DICT
        + binunicode("__defaults__")
        + pickle.NONE
        + pickle.SETITEM
        + pickle.BUILD
        + pickle.STOP
    )
    refused(write_zip(tmp_path / "build.pth.tar", pkl), "truncated or corrupt")


def vox_legacy_layout():
    """(bytes, [(offset, element count) of each storage]) of the vox fixture."""
    data = VOX.read_bytes()
    f = io.BytesIO(data)
    for _ in range(3):  # magic, protocol, sys info
        pickle.load(f)
    for _ in pickletools.genops(f):  # the main pickle (its persistent ids need torch)
        pass
    pickle.load(f)  # storage keys
    spans = []
    while f.tell() < len(data):
        (count,) = struct.unpack("<q", f.read(8))
        spans.append((f.tell(), count))
        f.seek(count * 4, 1)  # every fixture storage is float32
    return data, spans


def test_legacy_storage_lengths_checked_against_the_file(tmp_path):
    data, spans = vox_legacy_layout()
    offset, count = spans[3]
    longer = bytearray(data)
    longer[offset - 8 : offset] = struct.pack("<q", count + 1)
    refused(write_bytes(tmp_path / "count.pth.tar", longer), f"has {count + 1} elements")
    refused(write_bytes(tmp_path / "trailing.pth.tar", data + b"\0" * 4), "after the last storage")


def test_legacy_nan_in_weights(tmp_path):
    """The legacy format has no checksum: damaged float bytes that decode as NaN are caught."""
    data, spans = vox_legacy_layout()
    offset, _ = spans[5]
    damaged = bytearray(data)
    damaged[offset : offset + 4] = b"\xff\xff\xff\xff"
    refused(write_bytes(tmp_path / "nan.pth.tar", damaged), "NaN or infinity")


def write_bytes(path, data):
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
def test_run_py_reports_a_hostile_checkpoint_in_one_line(tmp_path):
    body = exponential(40, pickle.TUPLE)
    path = write_zip(tmp_path / "exp.pth.tar", as_checkpoint(body))
    config = FIXTURES / "tiny-vox" / "config.yaml"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--model", "x", "--config", str(config)]
        + ["--checkpoint", str(path), "--output", str(tmp_path / "out.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CPU, (60, 60)),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "exp.pth.tar" in lines[-1]
    assert "Traceback" not in result.stderr
