"""modules/atomic.py: every write goes through a temporary beside the target, renamed into
place only when complete, with the umask's permissions."""

import os
import re
import stat
import subprocess
import sys
import time

import pytest

from modules.atomic import FOREIGN_AGE, discard, owner, replacing, temp_beside, write_file


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_temp_beside_names_and_permissions(tmp_path, umask_022):
    file = temp_beside(tmp_path / "out.mp4")
    folder = temp_beside(tmp_path / "frames.v2", folder=True)
    assert os.path.dirname(file) == str(tmp_path)
    assert file.endswith(".mp4") and ".tmp-" in os.path.basename(file)
    assert os.path.basename(folder).startswith(".frames.v2.tmp-")
    assert os.path.getsize(file) == 0 and os.listdir(folder) == []
    assert (mode(file), mode(folder)) == (0o644, 0o755)
    other = temp_beside(tmp_path / "out.mp4")
    assert other != file
    discard(other)
    discard(file)
    discard(folder)
    discard(file)  # already gone: no error
    assert os.listdir(tmp_path) == []


def test_write_file(tmp_path, umask_022):
    path = tmp_path / "sub" / "a.txt"
    write_file(path, "one")
    write_file(path, b"two")
    assert path.read_bytes() == b"two" and mode(path) == 0o644
    with pytest.raises(TypeError):
        write_file(path, 3)
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["a.txt"]


def test_replacing_keeps_the_old_folder_on_failure(tmp_path, umask_022):
    target = tmp_path / "model"
    with replacing(target) as tmp:
        open(os.path.join(tmp, "a"), "w").close()
    assert os.listdir(target) == ["a"] and mode(target) == 0o755
    with pytest.raises(KeyboardInterrupt), replacing(target) as tmp:
        open(os.path.join(tmp, "b"), "w").close()
        raise KeyboardInterrupt
    assert os.listdir(target) == ["a"]
    with replacing(target) as tmp:
        open(os.path.join(tmp, "c"), "w").close()
    assert os.listdir(target) == ["c"]
    assert os.listdir(tmp_path) == ["model"]


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_name_their_machine(tmp_path):
    """The owner part (host, boot, process namespace) is this process's own."""
    name = os.path.basename(temp_beside(tmp_path / "out.mp4"))
    assert re.fullmatch(rf"\.out\.tmp-{os.getpid()}-{owner()}-[0-9a-f]{{8}}\.mp4", name), name


def test_stale_temporaries_of_other_machines_wait_a_day(tmp_path):
    """A temporary made on another host, boot or container (another owner) is never judged by
    its process id, which means another process there: it stays while recent, even with a
    process id that is dead here; after FOREIGN_AGE untouched it goes."""
    pid = dead_pid()
    ours = tmp_path / f".out.tmp-{pid}-{owner()}-0123abcd.mp4"
    foreign = tmp_path / f".out.tmp-{pid}-{'f' * 8 if owner() != 'f' * 8 else 'e' * 8}-0123abcd.mp4"
    old_foreign = tmp_path / f".out.tmp-{pid}-00000000-89abcdef.mp4"
    old_frames = tmp_path / f".out.mp4.tmp-{pid}-11111111-89abcdef"  # another target's
    for path in (ours, foreign, old_foreign):
        path.write_bytes(b"partial")
    old_frames.mkdir()
    day_ago = time.time() - FOREIGN_AGE - 60
    os.utime(old_foreign, (day_ago, day_ago))
    new = temp_beside(tmp_path / "out.mp4")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [foreign.name, old_frames.name, os.path.basename(new)]
    )


def test_old_folder_temporary_counts_its_newest_file(tmp_path):
    """A foreign temporary folder whose own time is old but which a live run still fills is
    not stale."""
    day_ago = time.time() - FOREIGN_AGE - 60
    folder = tmp_path / f".frames.tmp-{dead_pid()}-00000000-0123abcd"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "000001.png").write_bytes(b"new")
    os.utime(folder, (day_ago, day_ago))
    os.utime(folder / "sub", (day_ago, day_ago))
    temp_beside(tmp_path / "frames", folder=True)
    assert folder.exists()
    os.utime(folder / "sub" / "000001.png", (day_ago, day_ago))
    temp_beside(tmp_path / "frames", folder=True)
    assert not folder.exists()


@pytest.mark.parametrize("length", [240, 250, 255])
@pytest.mark.parametrize("suffix", [".mp4", ""])
def test_long_target_names(tmp_path, length, suffix):
    """Targets whose names are near the 255-byte limit (multi-byte characters too) get
    temporaries within it, and a temporary of the temporary (audio muxing) too."""
    for char in ("a", "é"):
        count = (length - len(suffix)) // len(char.encode())
        target = tmp_path / (char * count + suffix)
        write_file(target, b"data")
        assert target.read_bytes() == b"data"
        tmp = temp_beside(target)
        inner = temp_beside(tmp)
        for path in (tmp, inner):
            name = os.path.basename(path)
            assert len(os.fsencode(name)) <= 255 and ".tmp-" in name
            assert name.endswith(suffix)
        discard(inner)
        discard(tmp)
        # A killed run's temporary of a long name is still found and cleaned.
        killed = temp_beside(target)
        os.rename(killed, killed.replace(f".tmp-{os.getpid()}-", f".tmp-{dead_pid()}-"))
        write_file(target, b"again")
        assert sorted(os.listdir(tmp_path)) == [target.name]
        target.unlink()
