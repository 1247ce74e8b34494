"""Seeded checkpoint fuzzer, run by tests/test_checkpoint_fuzz.py in a fresh process.

``python tests/checkpoint_fuzz.py SEED COUNT FOLDER`` writes COUNT mutants of each fixture
checkpoint into FOLDER and reads each one in a forked child limited by ``setrlimit``
(address space: what this process has plus MEMORY_LIMIT; CPU time: TIME_LIMIT) and by a
wall-clock alarm. It prints one JSON line per mutant: how it was made, the outcome ("ok",
"error" with the CheckpointError's message, "crash" with a traceback, or "killed" with the
signal), the wall time and the child's peak resident memory.

Mutations favour the bytes that carry structure (the pickles, the legacy storage headers,
the zip headers and central directory): uniformly placed damage nearly always lands in
tensor bytes, which the zip CRC catches and the legacy format cannot see.
"""

import json
import os
import pathlib
import random
import resource
import signal
import struct
import sys
import time
import traceback
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modules.convert.checkpoint import read_state_dicts  # noqa: E402
from modules.errors import CheckpointError  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CHECKPOINTS = [
    FIXTURES / "tiny-vox" / "tiny-vox-cpk.pth.tar",  # legacy
    FIXTURES / "tiny-mgif" / "tiny-mgif-cpk.pth.tar",  # zip
]
TIME_LIMIT = 10  # seconds
MEMORY_LIMIT = 2**30  # bytes of address space beyond the fuzzer's own


def structure_spans(data):
    """[(start, end)] of the bytes that hold structure rather than tensor values."""
    if data[:4] == b"PK\x03\x04":
        import io

        spans = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            for info in infos:
                start = info.header_offset
                name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
                body = start + 30 + name_len + extra_len
                end = body + (info.compress_size if info.filename.endswith("data.pkl") else 0)
                spans.append((start, end))
            spans.append((archive.start_dir, len(data)))
        return spans
    import pickle
    import pickletools

    f = __import__("io").BytesIO(data)
    for _ in range(3):
        pickle.load(f)
    for _ in pickletools.genops(f):
        pass
    pickle.load(f)
    spans = [(0, f.tell())]
    while f.tell() < len(data):
        (count,) = struct.unpack("<q", f.read(8))
        spans.append((f.tell() - 8, f.tell()))
        f.seek(count * 4, 1)
    return spans


def mutate(data, spans, rng):
    """One damaged copy of ``data`` and a short description of the damage."""
    data = bytearray(data)

    def position():
        if rng.random() < 0.8:
            start, end = rng.choice(spans)
            return rng.randrange(start, max(end, start + 1))
        return rng.randrange(len(data))

    kind = rng.choice(["bits", "bytes", "int", "truncate", "insert", "delete"])
    at = min(position(), len(data) - 1)
    if kind == "bits":
        for _ in range(rng.randint(1, 8)):
            where = min(position(), len(data) - 1)
            data[where] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        n = rng.randint(1, 64)
        fill = rng.choice([b"\x00", b"\xff", None])
        data[at : at + n] = fill * n if fill else rng.randbytes(n)
    elif kind == "int":
        size = rng.choice([1, 2, 4, 8])
        value = rng.choice([0, 1, 0xFF, 2**31 - 1, 2**31, 2**32 - 1, 2**62, 2**64 - 1])
        data[at : at + size] = (value % 2 ** (8 * size)).to_bytes(size, "little")
    elif kind == "truncate":
        del data[at:]
    elif kind == "insert":
        data[at:at] = rng.randbytes(rng.randint(1, 32))
    else:
        del data[at : at + rng.randint(1, 32)]
    return bytes(data), f"{kind}@{at}"


def address_space():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def read_in_child(read, path, expected):
    """Calls ``read(path)`` in a forked, limited child that leads its own process group (what
    it starts, such as ffmpeg, ends with it); returns (outcome, detail, seconds, peak KiB):
    'ok', 'error' (an ``expected`` exception, its message), 'crash' (any other, its
    traceback) or 'killed' (the signal)."""
    read_end, write_end = os.pipe()
    limit = address_space() + MEMORY_LIMIT
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code, detail = 0, "ok"
        try:
            os.setpgid(0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CPU, (TIME_LIMIT, TIME_LIMIT + 1))
            signal.alarm(TIME_LIMIT)
            read(path)
        except expected as error:
            code, detail = 1, str(error)
        except BaseException:
            code, detail = 2, traceback.format_exc()
        os.write(write_end, detail.encode(errors="replace")[:65536])
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - start
    try:
        os.killpg(pid, signal.SIGKILL)  # a process the child left behind
    except ProcessLookupError:
        pass
    detail = b"".join(chunks).decode(errors="replace")
    if os.WIFSIGNALED(status):
        outcome, detail = "killed", signal.Signals(os.WTERMSIG(status)).name
    else:
        outcome = {0: "ok", 1: "error"}.get(os.WEXITSTATUS(status), "crash")
    return outcome, detail, seconds, usage.ru_maxrss


def main(seed, count, folder):
    rng = random.Random(seed)
    for original in CHECKPOINTS:
        data = original.read_bytes()
        spans = structure_spans(data)
        for i in range(count):
            mutant, how = mutate(data, spans, rng)
            path = os.path.join(folder, f"{original.name}.{i}")
            with open(path, "wb") as f:
                f.write(mutant)
            outcome, detail, seconds, peak = read_in_child(read_state_dicts, path, CheckpointError)
            os.remove(path)
            record = {"file": original.name, "mutation": how, "outcome": outcome}
            record.update(detail=detail, seconds=round(seconds, 3), peak_kib=peak, path=path)
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
