"""Makes docs/paste_back.png, the README's before/after picture of --paste_back --multi_face:
the source photo | a driving frame | the result, made by run.py itself.

    python docs/make_paste_back.py

The source is tests/face_scenes.py's two-face scene (scikit-image's astronaut and cameraman
photos on a background), the driving video example/driving.mp4, the model the tiny test
model (random weights: nothing is downloaded, so the pasted faces are the model's noise).
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402
from face_scenes import two_faces  # noqa: E402
from skimage import img_as_ubyte  # noqa: E402
from skimage.transform import resize  # noqa: E402

FRAME = 30  # the driving frame shown
HEIGHT = 200  # of each panel in the picture
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")


def panel(image):
    height, width = image.shape[:2]
    size = (HEIGHT, round(width * HEIGHT / height))
    return img_as_ubyte(resize(image[..., :3], size, anti_aliasing=True))


def main():
    import run

    driving = os.path.join(ROOT, "example", "driving.mp4")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "group.png")
        imageio.imwrite(source, two_faces()[0])
        frames = os.path.join(tmp, "frames") + os.sep
        command = [
            "--model", "tiny-vox",
            "--config", os.path.join(TINY, "config.yaml"),
            "--checkpoint", os.path.join(TINY, "tiny-vox-cpk.pth.tar"),
            "--source_image", source,
            "--driving_video", driving,
            "--crop", "--paste_back", "--multi_face", "--relative",
            "--frames", str(FRAME + 1),
            "--output", frames,
        ]  # fmt: skip
        print("python run.py " + " ".join(command))
        run.main(command)
        result = imageio.imread(os.path.join(frames, f"{FRAME:06d}.png"))
        still = imageio.imread(source)
    reader = imageio.get_reader(driving)
    driving_frame = reader.get_data(FRAME)
    reader.close()
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    picture = np.concatenate([panel(still), gap, panel(driving_frame), gap, panel(result)], axis=1)
    out = os.path.join(HERE, "paste_back.png")
    imageio.imwrite(out, picture, optimize=True)
    print(f"{os.path.relpath(out, ROOT)}: {picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
