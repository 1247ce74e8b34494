"""The dataset modes' inputs: the original's video kinds, its dataset layout, pairs lists and
config sections, and the errors for bad ones (all before any model loads)."""

import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import FIXTURES, checkpoint_path
from skimage import img_as_float32

from modules.app.dataset import dataset_videos, load_params, random_pairs, read_pairs
from modules.app.frames import read_frames
from modules.app.visualize import Visualizer, colormap
from modules.errors import ConfigError, InputError, UsageError

DATASET = FIXTURES / "tiny-vox" / "dataset"
TEST = DATASET / "data" / "test"
SHAPE = (256, 256)


def test_layout_uses_test_folder_when_train_exists():
    folder, videos = dataset_videos(str(DATASET / "data"))
    assert folder.endswith("test")
    assert videos == ["a-clip.mp4", "b-frames", "c-loop.gif", "d-strip.png"]


def test_every_kind_reads_the_original_frames():
    """Each kind gives the frames the original's read_video gives: img_as_float32 of the
    file's frames, as they are."""
    clip = np.stack(list(read_frames(str(TEST / "a-clip.mp4"), SHAPE)))
    assert clip.shape == (6, 256, 256, 3) and clip.dtype == np.float32
    np.testing.assert_array_equal(
        clip, img_as_float32(np.array(imageio.mimread(TEST / "a-clip.mp4")))
    )
    gif = np.stack(list(read_frames(str(TEST / "c-loop.gif"), SHAPE)))
    np.testing.assert_array_equal(
        gif, img_as_float32(np.array(imageio.mimread(TEST / "c-loop.gif"))[..., :3])
    )
    strip = np.stack(list(read_frames(str(TEST / "d-strip.png"), SHAPE)))
    image = img_as_float32(imageio.imread(TEST / "d-strip.png"))
    assert strip.shape == (3, 256, 256, 3)
    np.testing.assert_array_equal(strip[2], image[:, 512:768])
    frames = np.stack(list(read_frames(str(TEST / "b-frames"), SHAPE)))
    assert frames.shape == (5, 256, 256, 3)
    np.testing.assert_array_equal(
        frames[3], img_as_float32(imageio.imread(TEST / "b-frames" / "0003.png"))
    )


def test_grayscale_and_rgba_become_rgb(tmp_path):
    rgb = (np.arange(256 * 256 * 3) % 251).astype(np.uint8).reshape(256, 256, 3)
    folder = tmp_path / "frames"
    folder.mkdir()
    imageio.imwrite(folder / "0.png", rgb[..., 0])
    imageio.imwrite(folder / "1.png", np.dstack([rgb, np.full((256, 256), 7, np.uint8)]))
    gray, rgba = read_frames(str(folder), SHAPE)
    np.testing.assert_array_equal(gray, img_as_float32(np.repeat(rgb[..., :1], 3, 2)))
    np.testing.assert_array_equal(rgba, img_as_float32(rgb))


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("small.png", (128, 256, 3), "strip"),
        ("odd.png", (256, 300, 3), "multiple of 256"),
        ("frames", (200, 200, 3), "frame 0 is 200x200"),
    ],
)
def test_wrong_frame_size_is_an_error_naming_the_video(tmp_path, name, shape, message):
    path = tmp_path / name
    image = np.zeros(shape, np.uint8)
    if name == "frames":
        path.mkdir()
        imageio.imwrite(path / "0.png", image)
    else:
        imageio.imwrite(path, image)
    with pytest.raises(InputError, match=message) as error:
        list(read_frames(str(path), SHAPE))
    assert name in str(error.value)


@pytest.mark.parametrize("content", [b"", b"not a video at all"])
def test_damaged_video_is_an_input_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match="broken.mp4"):
        list(read_frames(str(path), SHAPE))


def test_empty_dataset_and_only_other_files(tmp_path):
    with pytest.raises(UsageError, match="no videos in the dataset folder"):
        dataset_videos(str(tmp_path))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match="notes.txt"), pytest.raises(UsageError, match="no videos"):
        dataset_videos(str(tmp_path))
    (tmp_path / "train").mkdir()
    with pytest.raises(UsageError, match="no test/ folder"):
        dataset_videos(str(tmp_path))
    with pytest.raises(UsageError, match="not found"):
        dataset_videos(str(tmp_path / "missing"))


def test_pairs_list(tmp_path):
    videos = dataset_videos(str(DATASET / "data"))[1]
    assert read_pairs(str(DATASET / "pairs.csv"), videos) == [
        ("a-clip.mp4", "b-frames"),
        ("d-strip.png", "a-clip.mp4"),
        ("b-frames", "c-loop.gif"),
    ]
    bad = tmp_path / "pairs.csv"
    bad.write_text("source,driving\na-clip.mp4,gone.mp4\n")
    with pytest.raises(UsageError, match=r"pairs.csv names 1 videos .*: 'gone.mp4'"):
        read_pairs(str(bad), videos)
    bad.write_text('source,driving\na-clip.mp4,"two\nlines.mp4"\n')  # names are quoted
    with pytest.raises(UsageError, match=r"not in the dataset: 'two\\nlines.mp4'"):
        read_pairs(str(bad), videos)
    bad.write_text("source,driving\na-clip.mp4,b-frames\nc-loop.gif\n")  # was a TypeError
    with pytest.raises(UsageError, match="line 3 has no 'driving' or 'source' value"):
        read_pairs(str(bad), videos)
    bad.write_text("first,second\na-clip.mp4,b-frames\n")
    with pytest.raises(UsageError, match="'source' and 'driving' columns"):
        read_pairs(str(bad), videos)
    with pytest.raises(UsageError, match="pairs file not found"):
        read_pairs(str(tmp_path / "none.csv"), videos)


def test_random_pairs_are_the_originals_draw():
    """Without a pairs list the original draws num_pairs (driving, source) index pairs, without
    replacement, from the first num_pairs videos with numpy's seed 0."""
    videos = [f"v{i}" for i in range(5)]
    pairs = random_pairs(videos, 3)
    assert len(pairs) == 3 and len(set(pairs)) == 3
    assert all(s in videos[:3] and d in videos[:3] for s, d in pairs)
    assert random_pairs(videos, 3) == pairs  # seeded
    assert len(random_pairs(videos, 50)) == 25


def test_config_sections(tmp_path):
    params = load_params(str(DATASET / "config.yaml"))
    assert params.root_dir == "data" and params.pairs_list == "pairs.csv"
    assert params.reconstruction_format == ".mp4" and params.num_videos is None
    assert params.normalization == {
        "adapt_movement_scale": False,
        "use_relative_movement": True,
        "use_relative_jacobian": True,
    }
    assert params.visualizer == {"kp_size": 5, "draw_border": True, "colormap": "gist_rainbow"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("animate_params:\n  normalization_params:\n    relative: true\n")
    with pytest.raises(ConfigError, match="normalization_params.relative"):
        load_params(str(bad))
    bad.write_text("reconstruction_params:\n  format: mp4\n")
    with pytest.raises(ConfigError, match="reconstruction_params.format"):
        load_params(str(bad))


def test_gist_rainbow_is_matplotlibs():
    """Values printed by matplotlib 3.11 (matplotlib.colormaps["gist_rainbow"](x)); all of
    k / n for n < 40 matched it within 6e-16."""
    cmap = colormap("gist_rainbow")
    np.testing.assert_allclose(cmap(0.0), [1.0, 0.0, 0.16])
    np.testing.assert_allclose(cmap(0.5), [0.0, 1.0, 0.5481762597512125], atol=1e-12)
    np.testing.assert_allclose(cmap(0.1), [1.0, 0.36777954425013254, 0.0], atol=1e-12)
    np.testing.assert_allclose(cmap(1.0), [1.0, 0.0, 0.75])
    with pytest.raises(ConfigError, match="colormap 'no-such-map'"):
        colormap("no-such-map")


def test_visualizer_frame_layout():
    image = np.full((256, 256, 3), 0.5, np.float32)
    kp = np.zeros((1, 2), np.float32)
    frame = Visualizer(kp_size=5, draw_border=True).frame([(image, kp), image])
    assert frame.shape == (256, 512, 3) and frame.dtype == np.uint8
    assert (frame[:, [0, 255, 256, 511]] == 255).all()  # the border of each column
    assert frame[128, 128].tolist() == [255, 0, 40]  # keypoint 0 at the centre, gist_rainbow(0)
    assert frame[10, 10].tolist() == [127, 127, 127]  # (255 * 0.5) truncated


def run_mode(*args):
    import run

    try:
        return run.main(
            [
                "--model",
                "tiny-vox",
                "--config",
                str(DATASET / "config.yaml"),
                "--checkpoint",
                str(checkpoint_path("tiny-vox")),
                *args,
            ]
        )
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "reconstruction", "--dataset", "EMPTY"], "no videos in the dataset folder"),
        (["--mode", "animate", "--pairs", "PAIRS"], "names 1 videos that are not in the dataset"),
        (["--mode", "reconstruction", "--relative"], "apply to --mode animate only"),
        (["--mode", "animate", "--source_image", "x.png"], "--source_image does not apply"),
        (["--mode", "animate", "--workers", "2"], "add --ray"),
        (["--dataset", "EMPTY"], "--dataset needs --mode"),
        (["--resume"], "--resume needs --mode"),
        (["--mode", "reconstruction", "--output", "FILE/out"], "cannot write to --output"),
    ],
)
def test_bad_dataset_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source,driving\na-clip.mp4,missing.mp4\n")
    args = [
        {"EMPTY": str(tmp_path / "empty"), "PAIRS": str(pairs), "FILE/out": str(pairs / "out")}.get(
            a, a
        )
        for a in args
    ]
    out = tmp_path / "out"
    assert run_mode("--output", str(out), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")
    assert not out.exists()
