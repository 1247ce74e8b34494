"""crop-video.py's face tracks: faces followed over the frames of a video, each track ending
when its face moves away from where it started.

A track holds its initial box, the union of all its boxes, and its first and last frame. On
every frame, a track lives on only while one of the frame's faces overlaps its *initial* box
with an IoU above ``iou_with_initial``; each face then joins the live track it overlaps most
(above the same IoU), or starts a new track. A track that ends, or lives to the last frame,
is kept when it spans more than ``min_frames`` frames (``end - start > min_frames``, as
crop-video.py).
"""

import dataclasses

from .boxes import iou, join


@dataclasses.dataclass
class Track:
    initial: tuple  # (x, y, w, h) of the face on its first frame
    union: tuple  # the smallest box holding every box of the track
    start: int  # first frame
    end: int  # last frame (inclusive)

    @property
    def frames(self):
        return self.end - self.start + 1


class Tracker:
    """Feed ``update(index, boxes)`` frame by frame; it returns the tracks that ended and are
    long enough; ``finish()`` returns the long-enough ones still open at the end."""

    def __init__(self, iou_with_initial=0.25, min_frames=150):
        self.iou_with_initial = iou_with_initial
        self.min_frames = min_frames
        self.tracks = []

    def update(self, index, boxes):
        live, ended = [], []
        for track in self.tracks:
            overlap = max((iou(track.initial, box) for box in boxes), default=0.0)
            (live if overlap > self.iou_with_initial else ended).append(track)
        self.tracks = live
        for box in boxes:
            best, best_iou = None, 0.0
            for track in self.tracks:
                overlap = iou(track.initial, box)
                if overlap > best_iou and overlap > self.iou_with_initial:
                    best, best_iou = track, overlap
            if best is None:
                self.tracks.append(Track(box, box, index, index))
            else:
                best.end = index
                best.union = join(best.union, box)
        return self.kept(ended)

    def finish(self):
        tracks, self.tracks = self.tracks, []
        return self.kept(tracks)

    def kept(self, tracks):
        return [t for t in tracks if t.end - t.start > self.min_frames]
