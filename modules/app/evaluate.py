"""One video of ``--mode reconstruction`` or one pair of ``--mode animate``, as the original's
reconstruction.py and animate.py compute them, and where their outputs go.

Reconstruction: the source is frame 0 of the video, every frame drives it with its keypoints
used as they are, and the loss of a frame is mean |prediction - frame|. Animate: the source is
frame 0 of the source video, the driving keypoints are normalized (``process_kp``) against
frame 0 of the driving video. Both write the predictions side by side as
``(255 * prediction).astype(uint8)`` (a PNG strip) and the Visualizer's frames as a video at
imageio's default 10 frames/s.

A ``Worker`` computes a ``Result`` (encoded strip and visualization, losses) and writes nothing
to the output folder, so the same code runs in this process or on a Ray worker; the caller
writes the result with ``write_result``.
"""

import dataclasses
import os

import numpy as np

from ..atomic import write_file
from .frames import read_frames
from .pipeline import named, prefetch, take
from .scratch import scratch_folder
from .strip import StripFile
from .video_writer import VideoWriter
from .visualize import Visualizer

FOLDERS = {"reconstruction": "reconstruction", "animate": "animation"}
# imageio.mimsave's default frame rate, which the original's visualizations have.
VISUALIZATION_FPS = 10


@dataclasses.dataclass(frozen=True)
class Job:
    name: str  # NAME (reconstruction) or DRIVING-SOURCE (animate)
    source: str  # path of the video whose frame 0 is the source
    driving: str  # path of the driving video


@dataclasses.dataclass
class Result:
    name: str
    frames: int
    png: bytes  # the encoded strip: uint8 [H, frames * W, 3] (modules/app/strip.py)
    visualization: bytes  # the encoded visualization video
    losses: list  # reconstruction: mean |prediction - frame| of each frame


class Worker:
    """Runs jobs of one mode with one set of models (a modules.app.sources model source).

    ``normalization``: process_kp's three flags for animate mode (None: reconstruction).
    """

    def __init__(self, models, mode, visualizer, video_format, normalization=None, batch_size=4):
        self.models = models
        self.mode = mode
        self.visualizer = Visualizer(**visualizer)
        self.format = video_format
        self.normalization = normalization
        self.batch_size = batch_size

    def batches(self, path):
        batch = []
        for frame in read_frames(path, self.models.frame_shape):
            batch.append(frame)
            if len(batch) == self.batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    def run(self, job):
        batches = prefetch(self.batches(job.driving))
        try:
            first = next(batches)
            if job.source == job.driving:
                source = first[:1]
            else:
                source_frames = read_frames(job.source, self.models.frame_shape)
                source = next(source_frames)[None]
                source_frames.close()
            with scratch_folder() as folder:
                path = os.path.join(folder, "visualization" + self.format)
                with StripFile(os.path.join(folder, "strip.raw")) as strip:
                    with VideoWriter(path, VISUALIZATION_FPS) as writer:
                        losses = self.animate(source, first, batches, writer, strip)
                    png = strip.png()
                with open(path, "rb") as f:
                    return Result(job.name, strip.frames, png, f.read(), losses)
        finally:
            batches.close()

    def animate(self, source, first, batches, writer, strip):
        """Appends each prediction to ``strip`` and each Visualizer frame to ``writer``;
        returns the losses."""
        models = self.models
        kp_source = models.kp_detector(image=source)
        encoded = models.encode_source(source_image=source)
        kp_initial = None
        losses = []
        for driving in _chain(first, batches):
            kp_driving = models.kp_detector(image=driving)
            kp_norm = None
            if self.normalization is not None:
                if kp_initial is None:
                    kp_initial = take(kp_driving, 0)
                kp_norm = models.process_kp(
                    **named("source", kp_source),
                    **named("driving", kp_driving),
                    **named("initial", kp_initial),
                    use_relative_movement=float(self.normalization["use_relative_movement"]),
                    use_relative_jacobian=float(self.normalization["use_relative_jacobian"]),
                    adapt_movement_scale=float(self.normalization["adapt_movement_scale"]),
                )
            out = models.animate_encoded(
                **encoded,
                **named("source", kp_source),
                **named("driving", kp_driving if kp_norm is None else kp_norm),
            )
            prediction = out["prediction"]
            strip.append((255 * prediction).astype(np.uint8))
            # torch.abs(prediction - driving).mean() of each frame, in float32
            losses.extend(float(x) for x in np.abs(prediction - driving).mean(axis=(1, 2, 3)))
            for frame in self.visualize(source, kp_source, driving, kp_driving, kp_norm, out):
                writer.append(frame)
        return losses

    def visualize(self, source, kp_source, driving, kp_driving, kp_norm, out):
        """The Visualizer's frames of one batch (generator outputs as the original's ``out``
        holds them: ``deformed`` is the source warped by the upsampled deformation)."""
        from .. import ops

        height, width = source.shape[1:3]
        prediction = out["prediction"]
        deformed = occlusion = None
        if "deformation" in out:
            grid = ops.resize_bilinear(out["deformation"], height, width)
            deformed = ops.grid_sample_2d(np.repeat(source, len(driving), 0), grid).numpy()
        if "occlusion_map" in out:
            # F.interpolate(occlusion_map, size) (nearest), repeated to 3 channels
            small = out["occlusion_map"]
            rows = np.arange(height) * small.shape[1] // height
            cols = np.arange(width) * small.shape[2] // width
            occlusion = np.repeat(small[:, rows][:, :, cols], 3, axis=3)
        for i in range(len(driving)):
            columns = [(source[0], kp_source["value"][0]), (driving[i], kp_driving["value"][i])]
            if deformed is not None:
                columns.append(deformed[i])
            if kp_norm is not None:
                columns.append((prediction[i], kp_norm["value"][i]))
            columns.append(prediction[i])
            if occlusion is not None:
                columns.append(occlusion[i])
            yield self.visualizer.frame(columns)


def _chain(first, rest):
    yield first
    yield from rest


def output_paths(output, mode, name, video_format):
    """(strip PNG, visualization video) of a job: OUT/reconstruction/png/NAME.png and
    OUT/reconstruction/NAME<format>, or the same under OUT/animation/."""
    folder = os.path.join(output, FOLDERS[mode])
    return os.path.join(folder, "png", name + ".png"), os.path.join(folder, name + video_format)


def write_result(result, mode, output, video_format):
    """Writes a result's visualization and strip, each atomically (strip last: it marks the
    job as done for --resume)."""
    strip_path, video_path = output_paths(output, mode, result.name, video_format)
    write_file(video_path, result.visualization)
    write_file(strip_path, result.png)


def is_done(job, mode, output, video_format):
    return all(os.path.isfile(p) for p in output_paths(output, mode, job.name, video_format))
