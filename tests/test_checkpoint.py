"""modules/checkpoint.py against torch.load on real files: the fixtures and torch.save output."""

import collections
import os
import pathlib
import pickle
import pickletools
import struct

import numpy as np
import pytest
import torch

from modules.convert.checkpoint import (
    CheckpointError,
    read_checkpoint,
    read_state_dicts,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
VOX = FIXTURES / "tiny-vox" / "tiny-vox-cpk.pth.tar"  # legacy format, with optimizer states
MGIF = FIXTURES / "tiny-mgif" / "tiny-mgif-cpk.pth.tar"  # zip format
FORMATS = {"legacy": False, "zip": True}  # -> _use_new_zipfile_serialization


def assert_same(ours, theirs, where="checkpoint"):
    """ours (numpy) equals theirs (torch.load) exactly: structure, key order, dtype, shape, bits."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, np.ndarray), where
        expected = theirs.numpy()
        assert ours.dtype == expected.dtype and ours.shape == expected.shape, where
        assert ours.tobytes() == expected.tobytes(), where
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs), where
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


def torch_load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("path", [VOX, MGIF], ids=["legacy-vox", "zip-mgif"])
def test_fixture_matches_torch_load(path):
    theirs = torch_load(path)
    assert_same(read_checkpoint(path), theirs)
    generator, kp_detector = read_state_dicts(path)
    assert_same(generator, theirs["generator"])
    assert_same(kp_detector, theirs["kp_detector"])
    assert all(isinstance(v, np.ndarray) for v in generator.values())


def test_legacy_fixture_has_optimizer_states():
    checkpoint = read_checkpoint(VOX)
    assert checkpoint["epoch"] == 99
    adam = checkpoint["optimizer_generator"]
    assert adam["param_groups"][0]["betas"] == (0.5, 0.999)
    assert isinstance(adam["state"][0]["exp_avg"], np.ndarray)


@pytest.mark.parametrize("path", [VOX, MGIF], ids=["legacy-vox", "zip-mgif"])
def test_use_torch_gives_the_same_arrays(path):
    assert_same(read_checkpoint(path, use_torch=True), torch_load(path))
    for ours, with_torch in zip(read_state_dicts(path), read_state_dicts(path, use_torch=True)):
        assert list(ours) == list(with_torch)
        for key in ours:
            assert ours[key].dtype == with_torch[key].dtype
            np.testing.assert_array_equal(ours[key], with_torch[key])


def strided_tensors():
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    return collections.OrderedDict(
        [
            ("transposed", base.t()),
            ("slice_sharing_storage", base[1:4, 2::3]),
            ("same_storage_whole", base),
            ("row_offset", base[5]),
            ("expanded", torch.tensor([1.5, -2.0]).expand(3, 2)),
            ("scalar", torch.tensor(7.25, dtype=torch.float64)),
            ("empty", torch.zeros(0, 3)),
            ("float64", torch.linspace(-1, 1, 7, dtype=torch.float64).reshape(7, 1)[::2]),
            ("float16", torch.tensor([[0.1, 65504.0], [-3.0, 1e-4]], dtype=torch.float16).t()),
            ("int64", torch.arange(-5, 15, dtype=torch.int64).reshape(4, 5)[:, 1:4]),
            ("int32", torch.tensor([2**31 - 1, -(2**31), 3], dtype=torch.int32)[1:]),
            ("int16", torch.tensor([-300, 300], dtype=torch.int16)),
            ("int8", torch.tensor([-128, 127], dtype=torch.int8)),
            ("uint8", torch.arange(256, dtype=torch.uint8).reshape(16, 16).t()[3:9]),
            ("bool", torch.tensor([[True, False, True], [False, False, True]]).t()),
            ("complex64", torch.tensor([1 + 2j, -3j], dtype=torch.complex64)),
        ]
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_strided_and_typed_tensors_round_trip(tmp_path, fmt):
    tensors = strided_tensors()
    path = tmp_path / f"{fmt}.pth.tar"
    saved = {
        "generator": tensors,
        "kp_detector": {"w": tensors["transposed"]},
        "epoch": 3,
        "extra": [1.5, ("a", None, True)],
    }
    torch.save(saved, path, _use_new_zipfile_serialization=FORMATS[fmt])
    ours = read_checkpoint(path)
    assert_same(ours, torch_load(path))
    for key, tensor in tensors.items():  # also against the tensors themselves, not only torch.load
        np.testing.assert_array_equal(ours["generator"][key], tensor.numpy())
    generator, _ = read_state_dicts(path)
    assert all(a.flags.writeable for a in generator.values())


def _write_legacy_with_storage_views(path, storage_module):
    """A legacy file as torch < 1.0 wrote it: persistent ids with view_metadata, saved from GPU."""
    storage_type = storage_module.FloatStorage

    class View:  # a tensor whose storage is the view '1' = root '0'[2:10]
        def __init__(self, offset, size, stride):
            self.args = (offset, size, stride)

        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (
                ViewStorage(),
                *self.args,
                False,
                collections.OrderedDict(),
            )

    class ViewStorage:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, ViewStorage):
                return ("storage", storage_type, "0", "cuda:0", 12, ("1", 2, 8))
            return None

    root = np.arange(12, dtype=np.float32) * 0.5
    with open(path, "wb") as f:
        for header in (
            0x1950A86A20F9469CFC6C,
            1001,
            {"protocol_version": 1001, "little_endian": True},
        ):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(
            {
                "generator": {"a": View(1, (2, 3), (3, 1)), "b": View(0, (4,), (2,))},
                "kp_detector": {},
            }
        )
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", 12) + root.tobytes())


@pytest.mark.parametrize("storage_module", [torch, torch.cuda], ids=["cpu", "cuda"])
def test_legacy_storage_views_and_gpu_storages(tmp_path, storage_module):
    path = tmp_path / "old.pth.tar"
    _write_legacy_with_storage_views(path, storage_module)
    generator, kp_detector = read_state_dicts(path)
    assert_same(read_checkpoint(path), torch_load(path))
    np.testing.assert_array_equal(generator["a"], [[1.5, 2.0, 2.5], [3.0, 3.5, 4.0]])
    np.testing.assert_array_equal(generator["b"], [1.0, 2.0, 3.0, 4.0])
    assert kp_detector == {}


class RunsShell:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


class OpensFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return open, (str(self.target), "w")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "payload, refused",
    [(RunsShell, f"{os.system.__module__}.system"), (OpensFile, f"{open.__module__}.open")],
)
def test_pickle_payload_is_refused_and_not_run(tmp_path, fmt, payload, refused):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save(
        {"generator": {"w": torch.ones(2)}, "kp_detector": payload(target)},
        path,
        _use_new_zipfile_serialization=FORMATS[fmt],
    )
    for use_torch in (False, True):
        with pytest.raises(CheckpointError) as error:
            read_state_dicts(path, use_torch=use_torch)
        message = str(error.value)
        assert refused in message and "evil.pth.tar" in message and "\n" not in message
        if not use_torch:
            assert "not executed" in message and "not a plain checkpoint" in message
    assert not target.exists()


@pytest.mark.parametrize("path", [VOX, MGIF], ids=["legacy-vox", "zip-mgif"])
def test_truncated_fixture(tmp_path, path):
    data = path.read_bytes()
    cut = tmp_path / f"cut-{path.name}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as error:
        read_checkpoint(cut)
    assert cut.name in str(error.value)


@pytest.mark.parametrize(
    "content", [b"", np.random.default_rng(0).bytes(4096)], ids=["empty", "random"]
)
def test_empty_or_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.pth.tar"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or corrupt") as error:
        read_checkpoint(path)
    assert "garbage.pth.tar" in str(error.value) and "\n" not in str(error.value)


def test_storage_bytes_missing_at_end(tmp_path):
    """Cut a few bytes only: the pickles are intact, the last storage is short."""
    path = tmp_path / "short.pth.tar"
    path.write_bytes(VOX.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(path)


def test_damaged_memo_index_fails_fast(tmp_path):
    """A flipped byte in a LONG_BINPUT index once made the C unpickler clear gigabytes of memo."""
    data = bytearray(VOX.read_bytes())
    with open(VOX, "rb") as f:
        for _ in range(3):  # magic number, protocol version, sys info
            pickle.load(f)
        start = f.tell()
        put = next(pos for op, _, pos in pickletools.genops(f) if op.name == "LONG_BINPUT")
    data[put + 1 : put + 5] = struct.pack("<I", 2**30)
    path = tmp_path / "memo.pth.tar"
    path.write_bytes(data)
    assert put > start
    with pytest.raises(CheckpointError, match="truncated or corrupt.*memo index"):
        read_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_is_reported_not_misread(tmp_path, fmt):
    path = tmp_path / "bf16.pth.tar"
    torch.save(
        {"generator": {"w": torch.ones(2, dtype=torch.bfloat16)}, "kp_detector": {}},
        path,
        _use_new_zipfile_serialization=FORMATS[fmt],
    )
    for use_torch in (False, True):
        with pytest.raises(
            CheckpointError, match=r"(?i)torch\.bfloat16(storage)? tensors have no numpy dtype"
        ):
            read_state_dicts(path, use_torch=use_torch)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found") as error:
        read_state_dicts(tmp_path / "nope-cpk.pth.tar")
    assert "nope-cpk.pth.tar" in str(error.value)
    with pytest.raises(CheckpointError, match="not a file"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_kp_detector_and_non_dict(tmp_path, fmt):
    path = tmp_path / "half.pth.tar"
    torch.save(
        {"generator": {"w": torch.ones(1)}, "epoch": 1},
        path,
        _use_new_zipfile_serialization=FORMATS[fmt],
    )
    with pytest.raises(CheckpointError, match="no 'kp_detector' entry") as error:
        read_state_dicts(path)
    assert "half.pth.tar" in str(error.value)

    torch.save([torch.ones(1)], path, _use_new_zipfile_serialization=FORMATS[fmt])
    with pytest.raises(CheckpointError, match="not a dict"):
        read_checkpoint(path)
