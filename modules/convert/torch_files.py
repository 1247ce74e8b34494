"""The two container formats of ``torch.save``, read with bounded memory.

* legacy (torch < 1.6, or ``_use_new_zipfile_serialization=False``; the published checkpoints):
  pickled magic number, protocol version and system info, the main pickle, the pickled list of
  storage keys, then every storage as an int64 element count followed by its raw bytes
  (as ``torch.serialization._legacy_load`` reads it). Each storage's count must equal the
  pickle's and fit in the file, and the storages must end exactly at the end of the file.
* zip (torch >= 1.6): ``<archive>/data.pkl`` plus one ``<archive>/data/<key>`` record per
  storage (as ``torch.serialization._load`` reads it). Records are streamed, and every
  record's declared uncompressed size is checked before it is read: a compressed record (torch
  writes none) could otherwise inflate a small file to gigabytes.
"""

import io
import os
import struct
import zipfile

import numpy as np

from .pickle_guard import (
    MAX_PICKLE_BYTES,
    LimitExceeded,
    PlainUnpickler,
    Unpickler,
    checked_pickle,
    short,
)
from .tensors import ALLOWED, Storages, storage_type

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_CHUNK = 2**20  # bytes read at a time from a zip record
# What zip storage records may hold in all beyond the file's own size: torch stores them
# uncompressed, but compressed or overlapping records can describe more than the file holds.
MAX_INFLATED_BYTES = 256 * 2**20


class _Capped:
    """File reads capped at the bytes the file still holds, so a damaged length field in a
    pickle cannot make a read request gigabytes."""

    def __init__(self, f):
        self.f, self.size = f, os.fstat(f.fileno()).st_size

    def read(self, n=-1):
        # No opcode of a pickle within the limits needs more than MAX_PICKLE_BYTES at once.
        left = min(max(self.size - self.f.tell(), 0), MAX_PICKLE_BYTES + 1)
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self):
        # Protocol-0 opcodes end at a newline; a file without one must not be read whole.
        return self.f.readline(MAX_PICKLE_BYTES)

    def tell(self):
        return self.f.tell()

    def seek(self, pos):
        return self.f.seek(pos)


def _read_array(f, dtype, numel, available):
    """``numel`` elements of ``dtype`` from ``f``, read straight into the array (in chunks,
    so a zip record is never held twice)."""
    nbytes = numel * dtype.itemsize
    if nbytes > available:
        raise EOFError("storage data ends early")
    array = np.empty(numel, dtype)
    buffer, done = memoryview(array.view(np.uint8)), 0
    while done < nbytes:
        got = f.readinto(buffer[done : done + _CHUNK])
        if not got:
            raise EOFError("storage data ends early")
        done += got
    return array


def _unpickle(data):
    storages = Storages()
    unpickler = Unpickler(checked_pickle(data), ALLOWED, storage_type, storages.persistent)
    return unpickler.load(), storages


def load_legacy(f):
    """``(object, storages)`` of a legacy file, every root storage read."""
    capped = _Capped(f)

    def plain():
        return PlainUnpickler(checked_pickle(capped)).load()

    if plain() != _LEGACY_MAGIC:
        raise ValueError("not a torch checkpoint (bad magic number)")
    if plain() != _LEGACY_PROTOCOL:
        raise ValueError("unknown legacy protocol version")
    plain()  # sys info; torch itself ignores it
    result, storages = _unpickle(capped)
    keys = plain()
    if not isinstance(keys, list):
        raise ValueError("storage key list missing")
    for key in keys:
        key = key.decode("ascii") if isinstance(key, bytes) else key
        storage = storages.by_key.get(key) if isinstance(key, str) else None
        if storage is None or storage.root is not None or storage.array is not None:
            raise ValueError(f"unexpected storage {short(key)}")
        header = f.read(8)
        if len(header) != 8:
            raise EOFError("storage data ends early")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise ValueError(f"storage {key} has {count} elements, expected {storage.numel}")
        # torch writes storages little-endian whatever the saving machine was.
        dtype = storage.dtype.newbyteorder("<")
        storage.array = _read_array(f, dtype, count, capped.size - f.tell())
    if f.tell() != capped.size:
        raise ValueError(f"{capped.size - f.tell()} bytes after the last storage")
    return result, storages


def _record(archive, info, limit):
    """A small zip record's bytes, its declared size checked before anything is inflated."""
    if info.file_size > limit:
        raise LimitExceeded(f"zip record {info.filename[:80]} declares {info.file_size} bytes")
    with archive.open(info) as f:
        data = f.read(limit + 1)
    if len(data) != info.file_size:
        raise ValueError(f"zip record {info.filename[:80]} is not the size it declares")
    return data


def load_zip(f):
    """``(object, storages)`` of a zip file, every root storage read."""
    budget = MAX_INFLATED_BYTES + os.fstat(f.fileno()).st_size
    with zipfile.ZipFile(f) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pkl = next((n for n in infos if n == "data.pkl" or n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValueError("zip archive without data.pkl")
        prefix = pkl[: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in infos:
            byteorder = _record(archive, infos[prefix + "byteorder"], 16).decode("ascii").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(f"unknown byte order {short(byteorder)}")
        result, storages = _unpickle(io.BytesIO(_record(archive, infos[pkl], MAX_PICKLE_BYTES)))
        for key, storage in storages.by_key.items():
            if storage.root is not None:
                continue
            info = infos.get(f"{prefix}data/{key}")
            if info is None:
                raise EOFError(f"storage record {prefix}data/{key} missing")
            if info.file_size != storage.numel * storage.dtype.itemsize:
                raise ValueError(f"storage record {info.filename} has the wrong size")
            # Records may overlap and compressed ones inflate: their sum is what counts.
            budget -= info.file_size
            if budget < 0:
                raise LimitExceeded(
                    f"storage records hold more than the file's size plus "
                    f"{MAX_INFLATED_BYTES // 2**20} MiB"
                )
            dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
            with archive.open(info) as data:
                storage.array = _read_array(data, dtype, storage.numel, info.file_size)
    return result, storages
