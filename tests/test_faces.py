"""Face detection, boxes, tracking and paste-back on real photos that scikit-image ships
(tests/face_scenes.py composes them into larger scenes with known face boxes)."""

import numpy as np
import pytest
from face_scenes import astronaut_scene, face_free, two_faces

from modules.app.boxes import check_inside, grow, iou, join, parse_box
from modules.app.faces import detect_faces
from modules.app.paste import feather_mask, paste
from modules.app.tracking import Tracker
from modules.errors import InputError, UsageError

# MTCNN's boxes against the hand-marked ones measured 0.83-0.96 (README: Face detection).
MIN_IOU = 0.75


@pytest.mark.parametrize("scale,mirror", [(0.35, False), (0.6, True), (1.0, False)])
def test_finds_the_astronaut_where_she_is(scale, mirror):
    scene, (truth,) = astronaut_scene(scale, (400, 100), mirror=mirror)
    faces = detect_faces(scene)
    assert len(faces) == 1
    assert iou(faces[0].box, truth) >= MIN_IOU, (faces[0].box, truth)


def test_finds_both_faces_of_a_two_face_scene_largest_first():
    scene, truth = two_faces()
    faces = detect_faces(scene)
    assert len(faces) == 2
    assert [iou(f.box, t) >= MIN_IOU for f, t in zip(faces, truth)] == [True, True]


@pytest.mark.parametrize("name,image", face_free()[:3], ids=lambda v: str(v)[:12])
def test_no_face_in_photos_without_people(name, image):
    assert detect_faces(image) == []


def test_grown_box_is_square_centred_and_inside():
    assert grow((100, 100, 50, 100), (400, 300)) == (65, 90, 120, 120)
    assert grow((0, 0, 50, 50), (400, 300)) == (0, 0, 60, 60)  # shifted inside, still square
    assert grow((0, 0, 300, 280), (320, 240)) == (30, 0, 240, 240)  # the frame's short side


def test_box_arithmetic():
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0
    assert join((0, 0, 10, 10), (20, 5, 5, 10)) == (0, 0, 25, 15)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "-1,0,10,10", "0,0,0,10", "1,2,3,4,5"])
def test_bad_box_text_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--source_box"):
        parse_box(text, "--source_box")


def test_box_past_the_edge_is_an_input_error_naming_the_file():
    assert check_inside((10, 10, 90, 40), (100, 50), "--source_box", "a.png")
    with pytest.raises(InputError, match=r"--source_box 10,10,91,40 .*'a.png' \(100x50\)"):
        check_inside((10, 10, 91, 40), (100, 50), "--source_box", "a.png")


def test_paste_changes_only_the_box_and_feathers_its_edge():
    scene, (face,) = astronaut_scene(0.6, (400, 100))
    box = grow(face, (scene.shape[1], scene.shape[0]))
    x, y, w, h = box
    animated = np.random.default_rng(0).random((256, 256, 3))
    out = paste(scene, animated, box)
    outside = np.ones(scene.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert out.dtype == np.uint8 and out.shape == scene.shape
    assert np.array_equal(out[outside], scene[outside])
    inner = out[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]
    assert np.mean(inner != scene[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]) > 0.9
    # the edge is mostly source, the middle all animation
    mask = feather_mask(h, w)
    assert mask[0, 0, 0] < 0.1 and mask[h // 2, w // 2, 0] == 1.0
    edge = np.abs(out[y, x : x + w].astype(int) - scene[y, x : x + w]).mean()
    middle = np.abs(
        inner.astype(int) - scene[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]
    )
    assert edge < middle.mean() / 5


def test_tracks_end_when_the_face_leaves_its_first_box():
    tracker = Tracker(iou_with_initial=0.25, min_frames=3)
    ended = []
    for i in range(6):  # a face drifting slowly: one track
        ended += tracker.update(i, [(100 + i, 50, 40, 40)])
    for i in range(6, 11):  # it jumps away: the first track ends, a second begins
        ended += tracker.update(i, [(300, 50, 40, 40)])
    assert [(t.start, t.end, t.union) for t in ended] == [(0, 5, (100, 50, 45, 40))]
    ended += tracker.update(11, [])  # no face: the second track ends
    assert [(t.start, t.end, t.frames) for t in ended[1:]] == [(6, 10, 5)]
    assert tracker.finish() == []


def test_short_tracks_are_dropped():
    tracker = Tracker(iou_with_initial=0.25, min_frames=3)
    kept = []
    for i in range(4):  # end - start = 3: not more than min_frames
        kept += tracker.update(i, [(0, 0, 10, 10)])
    kept += tracker.update(4, [])
    assert kept == [] and tracker.finish() == []
