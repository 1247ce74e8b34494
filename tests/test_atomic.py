"""modules/atomic.py: every write goes through a temporary beside the target, renamed into
place only when complete, with the umask's permissions."""

import os
import stat

import pytest

from modules.atomic import discard, replacing, temp_beside, write_file


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
