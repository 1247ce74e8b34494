"""The names of the dataset modes' outputs: the original's where they are unambiguous, else
with a short hash of what they stand for.

The original names a video's reconstruction after the video and a pair's animation
``DRIVING-SOURCE``. With '-' in video names, two pairs can share that name (``x-y`` drives ``z``
and ``x`` drives ``y-z``: both ``x-y-z``), and --resume would take one pair's output for the
other's. Such a name, and one too long for the file system, becomes
``NAME~HASH``: the (shortened) name and 12 hex digits of the pair, which no other pair shares.
"""

import hashlib

# A file name's limit on common file systems (ext4, XFS, APFS, NTFS): 255 bytes.
NAME_MAX = 255
HASH_DIGITS = 12


def pair_name(source, driving, videos, extensions):
    """The output name of ``driving`` animating ``source``; ``videos``: every video name of the
    dataset (any two of them may form a pair in another run); ``extensions``: those the name
    gets (``.png``, ``.mp4``)."""
    name = f"{driving}-{source}"
    return fitted(name, f"{driving}\0{source}", extensions, ambiguous(name, driving, videos))


def video_name(video, extensions):
    """The output name of a video's reconstruction: the video's name, if it fits."""
    return fitted(video, video, extensions)


def ambiguous(name, driving, videos):
    """Whether ``name`` (``driving-source``) also splits at another '-' into two videos."""
    known = set(videos)
    for i, char in enumerate(name):
        if char == "-" and i != len(driving) and name[:i] in known and name[i + 1 :] in known:
            return True
    return False


def fitted(name, key, extensions, hashed=False):
    """``name``, or ``name~HASH`` (shortened to fit ``NAME_MAX`` bytes with each extension) when
    ``hashed`` or when ``name`` is too long."""
    room = NAME_MAX - max(size(e) for e in extensions)
    if not hashed and size(name) <= room:
        return name
    suffix = "~" + hashlib.sha1(encoded(key)).hexdigest()[:HASH_DIGITS]
    while size(name + suffix) > room:
        name = name[:-1]
    return name + suffix


def encoded(text):
    # os.listdir gives undecodable bytes of a name as surrogates; they are one byte on disk
    return text.encode("utf-8", "surrogateescape")


def size(text):
    return len(encoded(text))
