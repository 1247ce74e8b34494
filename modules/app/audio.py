"""Copying the driving video's audio track into an animation (ffmpeg from imageio-ffmpeg)."""

import os
import subprocess
import warnings

from ..atomic import discard, temp_beside
from .probe import check_file, ffmpeg_arg, ffmpeg_exe, video_stream_info

# audio codecs each container takes as they are, and what to encode to otherwise
AUDIO_COPY = {
    ".mp4": {"aac", "mp3", "alac", "ac3"},
    ".m4v": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le"},
    ".mkv": None,
    ".avi": {"mp3", "aac", "ac3", "pcm_s16le"},
    ".webm": {"opus", "vorbis"},
}
AUDIO_ENCODE = {".webm": ["-c:a", "libopus", "-b:a", "96k"]}


def add_audio(video_path, audio_source, max_seconds=None, start_seconds=None, info=None):
    """Put the audio track of `audio_source` (the driving video) into `video_path`, in place.

    The audio starts at `start_seconds` of the source (crop.py's clips) and is cut to
    `max_seconds` when given; `info` is what `video_stream_info` said of `audio_source`, if
    it was asked already (the driving video is probed once a run). Returns True when audio
    was added. When it cannot be (the source
    has no audio, the output is a GIF or PNG frames, ffmpeg fails), this emits a UserWarning
    saying why, returns False and leaves `video_path` as it was.
    """
    video_path = os.fspath(video_path)
    if os.path.isdir(video_path):
        warnings.warn(f"No audio added: '{video_path}' is a folder of PNG frames.", stacklevel=2)
        return False
    video_path = check_file(video_path, "Video")
    ext = os.path.splitext(video_path)[1].lower()
    if ext not in AUDIO_COPY:
        warnings.warn(f"No audio added: a '{ext}' file cannot hold audio.", stacklevel=2)
        return False
    audio = (info or video_stream_info(audio_source))["audio"]
    if audio is None:
        warnings.warn(f"No audio added: '{audio_source}' has no audio track.", stacklevel=2)
        return False

    allowed = AUDIO_COPY[ext]
    copy = ["-c:a", "copy"]
    encode = AUDIO_ENCODE.get(ext, ["-c:a", "aac", "-b:a", "160k"])
    attempts = [copy, encode] if allowed is None or audio["codec"] in allowed else [encode]
    extra = ["-t", f"{max_seconds:.6f}"] if max_seconds is not None else []
    if ext in (".mp4", ".m4v", ".mov"):
        extra += ["-movflags", "+faststart"]
    tmp = temp_beside(video_path)
    try:
        for audio_args in attempts:
            cmd = (
                [
                    ffmpeg_exe(),
                    "-y",
                    "-nostdin",
                    "-v",
                    "error",
                    "-i",
                    ffmpeg_arg(video_path),
                ]
                + (["-ss", f"{start_seconds:.6f}"] if start_seconds else [])
                + [
                    "-i",
                    ffmpeg_arg(audio_source),
                    "-map",
                    "0:v",
                    "-map",
                    "1:a:0",
                    "-c:v",
                    "copy",
                ]
                + audio_args
                + extra
                + [ffmpeg_arg(tmp)]
            )
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if proc.returncode == 0 and os.path.getsize(tmp) > 0:
                os.replace(tmp, video_path)
                return True
        reason = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        warnings.warn(
            f"No audio added to '{video_path}': ffmpeg failed"
            f"{': ' + reason[-1] if reason else ''}.",
            stacklevel=2,
        )
        return False
    finally:
        discard(tmp)
