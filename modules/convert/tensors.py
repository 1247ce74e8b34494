"""Tensors of a torch checkpoint as numpy arrays: storages, strided views, and the torch
rebuild functions a checkpoint's pickle calls (re-implemented; torch is never imported).

While unpickling, tensors are recorded (``Tensor``: storage, offset, size, stride); their
bytes are read afterwards, then ``materialize`` swaps each record for its array. Every tensor
is checked against its storage, and float tensors must be finite: the legacy format has no
checksum, and NaN or infinity in a weight is the one kind of damage the values show.
"""

import collections
import math
import pickle

import numpy as np

from .pickle_guard import MAX_DEPTH, LimitExceeded, UnsupportedType

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
_MAX_DIM = 2**62  # larger sizes, strides or offsets cannot address memory
_FINITE_CHUNK = 2**20  # elements checked at a time, so the check needs little memory


class _Record:
    """The objects the pickle builds; BUILD (setting attributes) on them is refused, so a
    pickle cannot change a record after it was checked."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"state set on a {type(self).__name__.lower()}")


class StorageType(_Record):
    """Stands in for ``torch.FloatStorage`` & co. in persistent ids; only the dtype matters."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class Storage(_Record):
    """A flat storage. Its bytes are read once the pickle is done, into ``array``; a legacy
    view (``root`` set) is a slice of its root."""

    __slots__ = ("dtype", "numel", "root", "start", "array")

    def __init__(self, dtype, numel, root=None, start=0):
        self.dtype, self.numel, self.root, self.start = dtype, numel, root, start
        self.array = None

    def data(self):
        if self.root is None:
            return self.array
        return self.root.data()[self.start : self.start + self.numel]


def storage_type(module, name):
    """The stand-in for a storage global, None for a global that is not one."""
    if module not in ("torch", "torch.cuda") or not name.endswith("Storage"):
        return None
    if name not in _STORAGE_DTYPES:
        raise UnsupportedType(f"{module}.{name} tensors have no numpy dtype")
    return StorageType(_STORAGE_DTYPES[name])


def _count(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _MAX_DIM:
        raise ValueError(f"bad {what}")
    return value


class Storages:
    """Every storage the main pickle refers to, by key (``persistent_load``)."""

    def __init__(self):
        self.by_key = {}

    def persistent(self, pid):
        # ('storage', type, key, location, numel[, view_metadata]) as torch.save writes it.
        if len(pid) not in (5, 6) or not isinstance(pid[1], StorageType):
            raise pickle.UnpicklingError("unknown persistent id")
        dtype, key, numel = pid[1].dtype, str(pid[2])[:100], _count(pid[4], "storage size")
        root = self.by_key.setdefault(key, Storage(dtype, numel))
        if root.dtype != dtype or root.numel != numel or root.root is not None:
            raise ValueError(f"storage {key} declared twice, differently")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise ValueError("bad storage view")
        view_key, start, view_numel = view
        start, view_numel = _count(start, "view offset"), _count(view_numel, "view size")
        if start + view_numel > root.numel:
            raise ValueError("storage view outside its storage")
        view_key = str(view_key.decode("ascii") if isinstance(view_key, bytes) else view_key)
        found = self.by_key.setdefault(view_key[:100], Storage(dtype, view_numel, root, start))
        if found.root is not root or found.start != start or found.numel != view_numel:
            raise ValueError(f"storage view {view_key[:100]} declared twice, differently")
        return found

    def roots(self):
        return [s for s in self.by_key.values() if s.root is None]

    def finish(self):
        """Once every root's bytes are read: arrays in the machine's byte order, and float
        storages finite (torch never writes NaN or infinity into trained weights by itself)."""
        for key, storage in self.by_key.items():
            if storage.root is not None:
                continue
            if storage.array is None:
                raise EOFError(f"storage {key} has no data")
            if not storage.array.dtype.isnative:
                storage.array = storage.array.astype(storage.array.dtype.newbyteorder("="))
            if not _finite(storage.array):
                raise ValueError(f"storage {key} holds NaN or infinity (damaged data?)")


class Tensor(_Record):
    """A tensor recorded while unpickling; ``to_numpy`` runs once its storage is read."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self, budget):
        """The array; a copy for a strided view, charged to ``budget`` (bytes that copies may
        still take: a view can repeat its storage's elements any number of times, stride 0)."""
        data = self.storage.data()
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        # Check bounds ourselves: as_strided would read outside the buffer without complaint.
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= len(data):
            raise ValueError("a tensor reaches past the end of its storage")
        numel = math.prod(self.size)
        if self.offset == 0 and len(data) == numel and self.stride == _contiguous(self.size):
            return data.reshape(self.size)  # whole storage in order: no copy needed
        budget.spend(numel * data.itemsize)
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, [s * data.itemsize for s in self.stride]
        )
        return view.copy()


class CopyBudget:
    """Bytes that copies of strided tensors may take in all."""

    def __init__(self, limit):
        self.left = self.limit = limit

    def spend(self, nbytes):
        self.left -= nbytes
        if self.left < 0:
            raise LimitExceeded(
                f"strided tensors expand to more than {self.limit // 2**20} MiB "
                f"beyond the bytes the file holds"
            )


def _finite(values):
    if values.dtype.kind not in "fc":
        return True
    return all(
        np.isfinite(values[start : start + _FINITE_CHUNK]).all()
        for start in range(0, len(values), _FINITE_CHUNK)
    )


def _contiguous(size):
    strides, step = [], 1
    for n in reversed(size):
        strides.insert(0, step)
        step *= n
    return tuple(strides)


def _dims(value):
    if not isinstance(value, (tuple, list)) or len(value) > MAX_DEPTH:
        raise ValueError("bad tensor size or stride")
    return tuple(_count(v, "tensor size or stride") for v in value)


def _rebuild_tensor(storage, storage_offset, size, stride):
    """``torch._utils._rebuild_tensor``: a strided view into a storage (pre-1.0 files)."""
    size, stride = _dims(size), _dims(stride)
    if not isinstance(storage, Storage) or len(size) != len(stride):
        raise ValueError("malformed tensor record")
    return Tensor(storage, _count(storage_offset, "tensor offset"), size, stride)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    """``torch._utils._rebuild_tensor_v2``; autograd flags, hooks and metadata mean nothing
    to a numpy array, so they are dropped."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """``torch._utils._rebuild_parameter``: an ``nn.Parameter`` is just its tensor here."""
    return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def materialize(obj, budget):
    """Swaps every recorded tensor in the unpickled tree for its numpy array. Each object is
    converted once (memoized by identity): a pickle may share one list or tuple many times."""
    done = {}

    def convert(x, depth):
        if id(x) in done:
            return done[id(x)][1]
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"objects nested more than {MAX_DEPTH} deep")
        if isinstance(x, Tensor):
            result = x.to_numpy(budget)
        elif isinstance(x, dict):
            for key, value in list(x.items()):
                x[key] = convert(value, depth + 1)
            result = x
        elif isinstance(x, list):
            x[:] = [convert(v, depth + 1) for v in x]
            result = x
        elif isinstance(x, tuple):
            result = tuple(convert(v, depth + 1) for v in x)
        else:
            result = x
        done[id(x)] = (x, result)  # x kept alive so that its id is not reused
        return result

    return convert(obj, 0)
