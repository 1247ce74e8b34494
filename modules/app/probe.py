"""What ffmpeg says about a media file (no ffprobe ships with imageio-ffmpeg, so this parses
``ffmpeg -i``), and the input checks every reader shares.

Every ffmpeg that reads a user's file gets ``INPUT_PARAMS``: the file protocol only, and an
allow-list of demuxers that read the one file they are given. Playlists (hls, dash), concat
scripts and the image2 pattern demuxer are left out: they would make ffmpeg open other files
(by absolute path, anywhere) or URLs that the user never named.
"""

import os
import re
import subprocess

import imageio_ffmpeg

from ..errors import InputError

# Containers and raw streams of video (and audio, for --audio), and single images (so that an
# image given as the driving video is named as one). "mov" covers mp4, m4v, 3gp; "matroska"
# covers webm.
FORMATS = (
    "mov,matroska,avi,gif,flv,mpeg,mpegts,asf,ogg,nut,ivf,dv,yuv4mpegpipe,"
    "h264,hevc,m4v,mjpeg,mpegvideo,obu,wav,mp3,aac,flac,"
    "png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe,gif_pipe"
)
# Reading a header takes ffmpeg well under a second (it probes at most 5 MB and 5 s of stream).
PROBE_SECONDS = 60
INPUT_PARAMS = ["-protocol_whitelist", "file", "-format_whitelist", FORMATS]


def check_file(path, what):
    """``path`` as a string; InputError naming ``what`` when it is missing, a folder, or not a
    regular file (a FIFO or a device would block the reader, or never end)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what} not found: '{path}'. Check the path.")
    if os.path.isdir(path):
        raise InputError(f"{what} '{path}' is a directory, not a file. Give the path of a file.")
    if not os.path.isfile(path):
        raise InputError(
            f"{what} '{path}' is not a regular file (a pipe, device or socket). "
            f"Save it to a file and give that path."
        )
    return path


def ffmpeg_exe():
    """The ffmpeg that imageio-ffmpeg ships."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_arg(path):
    # An absolute path keeps ffmpeg from reading "name:rest" as a protocol or "-x" as an option.
    return os.path.abspath(os.fspath(path))


def video_stream_info(path):
    """Container and first video/audio stream of a media file, from `ffmpeg -i`.

    Returns {'format': str, 'duration': float | None,
             'video': {'codec', 'width', 'height', 'fps'} | None,
             'audio': {'codec', 'sample_rate', 'channels'} | None}.
    Raises InputError when the file is missing or ffmpeg cannot open it.
    """
    path = check_file(path, "Media file")
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", *INPUT_PARAMS, "-i", ffmpeg_arg(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=PROBE_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            f"Cannot open '{path}' as a video: ffmpeg took over {PROBE_SECONDS} s to read its "
            f"header. Use a valid video file such as .mp4."
        ) from None
    text = proc.stderr.decode("utf-8", errors="replace")
    head = re.search(r"^Input #0, (.+?), from ", text, re.M)
    if head is None and "Format not on whitelist" in text:
        raise InputError(
            f"Cannot open '{path}': not a video format this program reads (playlists such as "
            f".m3u8 and formats that name other files are refused). Use a video file such as .mp4."
        )
    if head is None:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        reason = lines[-1].split("] ")[-1] if lines else "unknown error"
        raise InputError(
            f"Cannot open '{path}' as a video: {reason}. Use a video file such as .mp4."
        )
    info = {"format": head.group(1), "duration": None, "video": None, "audio": None}
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if m:
        info["duration"] = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    for kind, rest in re.findall(r"^\s*Stream #0:\d+.*?: (Video|Audio): (.*)$", text, re.M):
        codec = rest.split(",")[0].split(" ")[0]
        if kind == "Video" and info["video"] is None:
            size = re.search(r"\b([1-9]\d*)x([1-9]\d*)\b", rest)
            fps = re.search(r"([\d.]+)(k?) fps", rest) or re.search(r"([\d.]+)(k?) tbr", rest)
            info["video"] = {
                "codec": codec,
                "width": int(size.group(1)) if size else None,
                "height": int(size.group(2)) if size else None,
                "fps": float(fps.group(1)) * (1000 if fps.group(2) else 1) if fps else None,
            }
        elif kind == "Audio" and info["audio"] is None:
            rate = re.search(r"(\d+) Hz", rest)
            fields = [f.strip() for f in rest.split(",")]
            info["audio"] = {
                "codec": codec,
                "sample_rate": int(rate.group(1)) if rate else None,
                "channels": fields[2] if len(fields) > 2 else None,
            }
    return info


def has_audio(path):
    """True when `path` has an audio stream."""
    return video_stream_info(path)["audio"] is not None


def count_frames(path):
    """Exact number of video frames (decodes the whole video; slow for long files)."""
    path = check_file(path, "Video")
    try:
        return imageio_ffmpeg.count_frames_and_secs(ffmpeg_arg(path))[0]
    except RuntimeError:
        raise InputError(
            f"Cannot count the frames of '{path}': ffmpeg cannot decode it. Use a valid video file."
        ) from None
