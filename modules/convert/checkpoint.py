"""Read the original FOMM's ``*-cpk.pth.tar`` checkpoints without torch.

``read_checkpoint`` reproduces ``torch.load(path, map_location='cpu', weights_only=True)``
with every tensor returned as a numpy array, for both torch serialization formats:

* legacy (torch < 1.6, or ``_use_new_zipfile_serialization=False``; the published checkpoints):
  pickled magic number, protocol version and system info, the main pickle, the pickled list of
  storage keys, then every storage as an int64 element count followed by its raw bytes
  (as ``torch.serialization._legacy_load`` reads it);
* zip (torch >= 1.6): ``<archive>/data.pkl`` plus one ``<archive>/data/<key>`` record per
  storage (as ``torch.serialization._load`` reads it).

Unpickling goes through an allow-list (``_Unpickler.find_class``): the few torch globals a
checkpoint of tensors needs are re-implemented here, anything else is refused before it could
be imported or called.
"""

import collections
import io
import math
import os
import pickle
import pickletools
import re
import struct
import zipfile

import numpy as np

from modules.errors import CheckpointError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch.<Name>Storage (and torch.cuda.<Name>Storage: the published checkpoints were saved from GPU).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
    "UntypedStorage": np.uint8,
}


class _Refused(Exception):
    """The pickle asked for a global outside the allow-list (it was neither imported nor run)."""


class _Unsupported(Exception):
    """A valid torch file holding something numpy cannot represent."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. in persistent ids; only the dtype matters."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Storage:
    """A flat storage. Legacy files keep the bytes after the pickle, so ``array`` is filled
    in once the pickle is done; a legacy view (``root`` set) is a slice of its root."""

    def __init__(self, dtype, numel, root=None, start=0):
        self.dtype, self.numel, self.root, self.start = dtype, numel, root, start
        self.array = None

    def data(self):
        if self.root is None:
            return self.array
        return self.root.data()[self.start : self.start + self.numel]


class _Tensor:
    """A tensor recorded while unpickling; ``to_numpy`` runs once its storage is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self):
        data = self.storage.data()
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        # Check bounds ourselves: as_strided would read outside the buffer without complaint.
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= len(data):
            raise ValueError("a tensor reaches past the end of its storage")
        if (
            self.offset == 0
            and len(data) == math.prod(self.size)
            and self.stride == _contiguous_strides(self.size)
        ):
            return data.reshape(self.size)  # whole storage in order: no copy needed
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, [s * data.itemsize for s in self.stride]
        )
        return view.copy()


def _contiguous_strides(size):
    strides, step = [], 1
    for n in reversed(size):
        strides.insert(0, step)
        step *= n
    return tuple(strides)


def _int_tuple(value):
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and v >= 0 for v in value
    ):
        raise ValueError(f"bad tensor size or stride {value!r:.80}")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride):
    """``torch._utils._rebuild_tensor``: a strided view into a storage (pre-1.0 files)."""
    size, stride = _int_tuple(size), _int_tuple(stride)
    if (
        not isinstance(storage, _Storage)
        or len(size) != len(stride)
        or not isinstance(storage_offset, int)
        or storage_offset < 0
    ):
        raise ValueError("malformed tensor record")
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    """``torch._utils._rebuild_tensor_v2``; autograd flags, hooks and metadata mean nothing
    to a numpy array, so they are dropped."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """``torch._utils._rebuild_parameter``: an ``nn.Parameter`` is just its tensor here."""
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def _ascii(value):
    # Files pickled by Python 2 torch carry bytes where Python 3 writes str.
    return value.decode("ascii") if isinstance(value, bytes) else value


class _PlainUnpickler(pickle.Unpickler):
    """Headers and key lists are plain data: any global there means the file is damaged."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a header")


class _Unpickler(pickle.Unpickler):
    """The main pickle; ``storages`` collects every storage it refers to, by key."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module in ("torch", "torch.cuda") and name.endswith("Storage"):
            raise _Unsupported(f"{module}.{name} tensors have no numpy dtype")
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        # ('storage', type, key, location, numel[, view_metadata]) as torch.save writes it.
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and _ascii(pid[0]) == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        ):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        dtype, key, numel = pid[1].dtype, str(_ascii(pid[2])), pid[4]
        root = self.storages.setdefault(key, _Storage(dtype, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        view_key, start, view_numel = view
        if not (
            isinstance(start, int)
            and isinstance(view_numel, int)
            and start >= 0
            and view_numel >= 0
            and start + view_numel <= root.numel
        ):
            raise ValueError("storage view outside its storage")
        return self.storages.setdefault(
            str(_ascii(view_key)), _Storage(dtype, view_numel, root, start)
        )


class _Capped:
    """File reads capped at the bytes the file still holds, so a damaged length field in a
    pickle cannot make a read request gigabytes."""

    def __init__(self, f):
        self.f, self.size = f, os.fstat(f.fileno()).st_size

    def read(self, n=-1):
        left = max(self.size - self.f.tell(), 0)
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self):
        return self.f.readline()

    def tell(self):
        return self.f.tell()

    def seek(self, pos):
        return self.f.seek(pos)


def _checked_pickle(f):
    """The next pickle in ``f`` as a BytesIO, after walking its opcodes with
    ``pickletools.genops`` (which runs nothing). The C unpickler trusts sizes in the data: a
    damaged memo index such as 2**30 would make it allocate and clear gigabytes."""
    start, puts = f.tell(), 0
    for op, arg, _ in pickletools.genops(f):
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if arg > puts:  # picklers number memo entries 0, 1, 2, ...
                raise ValueError(f"pickle memo index {arg} out of range")
            puts += 1
        elif op.name == "MEMOIZE":
            puts += 1
    end = f.tell()
    f.seek(start)
    return io.BytesIO(f.read(end - start))


def _read_array(f, dtype, numel, available):
    nbytes = numel * dtype.itemsize
    if nbytes > available:
        raise EOFError("storage data ends early")
    array = np.empty(numel, dtype)
    buffer, done = memoryview(array.view(np.uint8)), 0
    while done < nbytes:
        got = f.readinto(buffer[done:])
        if not got:
            raise EOFError("storage data ends early")
        done += got
    return array


def _load_legacy(f):
    capped = _Capped(f)

    def plain():
        return _PlainUnpickler(_checked_pickle(capped)).load()

    if plain() != _LEGACY_MAGIC:
        raise ValueError("not a torch checkpoint (bad magic number)")
    if plain() != _LEGACY_PROTOCOL:
        raise ValueError("unknown legacy protocol version")
    plain()  # sys info; torch itself ignores it
    unpickler = _Unpickler(_checked_pickle(capped))
    result = unpickler.load()
    keys = plain()
    if not isinstance(keys, list):
        raise ValueError("storage key list missing")
    size = capped.size
    for key in keys:
        storage = unpickler.storages.get(str(_ascii(key)))
        if storage is None or storage.root is not None:
            raise ValueError(f"unexpected storage {key!r:.40}")
        header = f.read(8)
        if len(header) != 8:
            raise EOFError("storage data ends early")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise ValueError(f"storage {key} has {count} elements, expected {storage.numel}")
        # torch writes storages little-endian whatever the saving machine was.
        storage.array = _read_array(f, storage.dtype.newbyteorder("<"), count, size - f.tell())
    return result, unpickler.storages


def _load_zip(f):
    with zipfile.ZipFile(f) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValueError("zip archive without data.pkl")
        prefix = pkl[: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
        unpickler = _Unpickler(_checked_pickle(io.BytesIO(archive.read(pkl))))
        result = unpickler.load()
        for key, storage in unpickler.storages.items():
            if storage.root is not None:
                continue
            name = f"{prefix}data/{key}"
            if name not in names:
                raise EOFError(f"storage record {name} missing")
            info = archive.getinfo(name)
            if info.file_size != storage.numel * storage.dtype.itemsize:
                raise ValueError(f"storage record {name} has the wrong size")
            dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
            with archive.open(info) as data:
                storage.array = _read_array(data, dtype, storage.numel, info.file_size)
    return result, unpickler.storages


def _materialize(obj):
    """Swap every recorded tensor in the unpickled tree for its numpy array."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = _materialize(value)
    elif isinstance(obj, list):
        obj[:] = [_materialize(v) for v in obj]
    elif isinstance(obj, tuple):
        return tuple(_materialize(v) for v in obj)
    return obj


def _native(storages):
    # Arrays read with an explicit byte order come back in the machine's own order.
    for storage in storages.values():
        if storage.array is not None and not storage.array.dtype.isnative:
            storage.array = storage.array.astype(storage.array.dtype.newbyteorder("="))
        elif storage.root is None and storage.array is None:
            raise EOFError("a storage has no data")


def _load_numpy(f):
    is_zip = f.read(4) == b"PK\x03\x04"
    f.seek(0)
    result, storages = (_load_zip if is_zip else _load_legacy)(f)
    _native(storages)
    return _materialize(result)


def _load_torch(path):
    """The cross-check route: ``torch.load(..., weights_only=True)``, tensors as numpy."""
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading with torch needs torch; pip install torch, "
            f"or drop --loadwithtorch to use the built-in reader"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only names the global it blocked, e.g. 'GLOBAL posix.system'.
        blocked = re.search(r"GLOBAL ([\w.]+)", str(e))
        if blocked:
            raise _Refused(blocked.group(1)) from None
        raise

    def convert(x):
        if isinstance(x, torch.Tensor):
            if x.dtype == torch.bfloat16:
                raise _Unsupported("torch.bfloat16 tensors have no numpy dtype")
            return x.detach().resolve_conj().numpy().copy()
        if isinstance(x, dict):
            return type(x)((k, convert(v)) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return type(x)(convert(v) for v in x)
        return x

    return convert(obj)


def _one_line(e):
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


_FOMM_HINT = "pass an FOMM *-cpk.pth.tar checkpoint saved by the original train.py"


def read_checkpoint(path, use_torch=False):
    """The whole checkpoint as ``torch.load(path, map_location='cpu', weights_only=True)``
    would return it, with numpy arrays for tensors. ``use_torch=True`` calls exactly that
    (torch imported only then), as a cross-check."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(
            f"{path}: checkpoint not found; check the path (the published "
            f"*-cpk.pth.tar files are linked from the original README)"
        )
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a file; {_FOMM_HINT}")
    try:
        if use_torch:
            result = _load_torch(path)
        else:
            with open(path, "rb") as f:
                result = _load_numpy(f)
    except CheckpointError:
        raise
    except _Refused as e:
        raise CheckpointError(
            f"{path}: refused global {e} (it was not executed): the file is not a plain "
            f"checkpoint of tensors; do not load it anywhere unless you trust its source"
        ) from None
    except _Unsupported as e:
        raise CheckpointError(
            f"{path}: cannot be read into numpy: {e}; "
            f"convert it to float32 with torch and save it again"
        ) from None
    except PermissionError as e:
        raise CheckpointError(
            f"{path}: cannot be read ({_one_line(e)}); check its permissions"
        ) from None
    except Exception as e:  # a damaged file can break pickle, zipfile, struct or numpy anywhere
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint ({type(e).__name__}: "
            f"{_one_line(e)}); download it again"
        ) from None
    if not isinstance(result, dict):
        raise CheckpointError(f"{path}: holds a {type(result).__name__}, not a dict; {_FOMM_HINT}")
    return result


def read_state_dicts(path, use_torch=False):
    """``(checkpoint['generator'], checkpoint['kp_detector'])``: the two state dicts the
    original demo.py passes to ``load_state_dict``, as ``{key: np.ndarray}`` in file order."""
    checkpoint = read_checkpoint(path, use_torch)
    path = os.fspath(path)
    state_dicts = []
    for name in ("generator", "kp_detector"):
        if name not in checkpoint:
            found = ", ".join(map(str, checkpoint)) or "nothing"
            raise CheckpointError(f"{path}: no '{name}' entry (found: {found}); {_FOMM_HINT}")
        state = checkpoint[name]
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()
        ):
            raise CheckpointError(f"{path}: '{name}' is not a state dict of tensors; {_FOMM_HINT}")
        state_dicts.append(state)
    return tuple(state_dicts)
