"""The clip generator of the small video prior: clips of every motion (lid, lamp, pick-and-place,
fold) move as their prompts say, are a pure function of the seed (looks and distractors too),
survive a round trip to disk, and `fit_angles` recovers the ground truth from the pixels alone
(the measurement that later checks clips a model generates)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from chord_robot.errors import ConfigError, InputError
from sim.clip_files import concatenate_clips, load_clips, save_clips
from sim.clips import (
    MOTIONS,
    ClipConfig,
    ClipScene,
    fit_angles,
    generate,
    joint_values,
    motion_angles,
)
from sim.world import World

CONFIG = ClipConfig(size=32, num_frames=9)


@pytest.fixture(scope="module")
def clips(world: World, asset_root: str):
    return generate(world, 8, seed=3, config=CONFIG, asset_root=asset_root)


def test_clips_move_the_prompted_way(clips) -> None:
    assert clips.videos.shape == (8, 9, 32, 32, 3) and clips.videos.dtype == np.uint8
    assert clips.prompts == tuple(MOTIONS) and list(clips.prompt_ids) == list(range(8))
    for i, k in enumerate(clips.prompt_ids):
        motion = MOTIONS[clips.prompts[k]]
        steps = np.diff(clips.angles[i]) * motion.direction
        assert (steps >= 0).all() and steps.sum() > 20.0, (motion.prompt, clips.angles[i])
        # the object is in view and moves on screen: first and last frames differ
        changed = np.abs(clips.videos[i, 0].astype(int) - clips.videos[i, -1].astype(int)).sum(-1) > 30
        assert changed.sum() >= 4, (motion.prompt, changed.sum())
        assert clips.scenes[i].to_camera().width == 32


def test_clips_are_a_function_of_the_seed(world: World, asset_root: str, clips) -> None:
    again = generate(world, 2, seed=3, config=CONFIG, asset_root=asset_root)
    other = generate(world, 2, seed=4, config=CONFIG, asset_root=asset_root)
    assert np.array_equal(again.videos, clips.videos[:2]) and again.scenes == clips.scenes[:2]
    assert not np.array_equal(other.videos, clips.videos[:2])


def test_workers_render_the_same_set(world: World, asset_root: str, clips) -> None:
    """Two rendering processes give the same clips in the same order as one (textured ones
    too: their patch meshes are written by both processes into one cache)."""
    seen = []
    split = generate(world, 8, seed=3, config=CONFIG, asset_root=asset_root, workers=2,
                     progress=lambda done, n: seen.append((done, n)))
    assert np.array_equal(split.videos, clips.videos) and split.scenes == clips.scenes
    assert np.array_equal(split.prompt_ids, clips.prompt_ids) and np.array_equal(split.angles, clips.angles)
    assert seen[-1] == (8, 8) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    textured = ClipConfig(size=32, num_frames=9, textured=1.0)
    one = generate(world, 4, seed=6, config=textured, asset_root=asset_root)
    two = generate(world, 4, seed=6, config=textured, asset_root=asset_root, workers=2)
    assert np.array_equal(one.videos, two.videos)
    with pytest.raises(InputError, match="workers"):
        generate(world, 4, seed=6, config=CONFIG, workers=0)


LOOKS = ClipConfig(size=32, num_frames=9, looks=0.6, distractors=(1, 2), free_colours=0.5, floor=True,
                   arm_share=(0.2, 0.8))


def test_fit_angles_recovers_the_ground_truth(world: World, asset_root: str, clips) -> None:
    for i in range(8):  # every motion; state units: degrees, pick: percent of the carry
        fitted = fit_angles(world, clips.scenes[i], clips.videos[i], asset_root=asset_root)
        err = np.abs(fitted - clips.angles[i])  # 32 px: a few degrees are one pixel edge-on
        assert np.median(err) <= 1.5 and err.max() <= 6.5, (clips.prompts[i], fitted, clips.angles[i])
    # a still video of the start state measures no motion
    still = np.repeat(clips.videos[0][:1], 9, axis=0)
    fitted = fit_angles(world, clips.scenes[0], still, asset_root=asset_root)
    assert np.ptp(fitted) == 0 and abs(fitted[0] - clips.angles[0][0]) <= 1.25


def test_looks_and_distractors_are_drawn_rebuilt_and_measured(world: World, asset_root: str) -> None:
    """Textured surfaces, a floor, free colours and 1-2 distractors: a clip's scene rebuilds to
    the same pixels (what `fit_angles` relies on) and two worker processes render the same set."""
    from sim.clips import build, render_angles

    looks = generate(world, 8, seed=11, config=LOOKS, asset_root=asset_root)
    scenes = looks.scenes
    counts = [len(s.distractors) for s in scenes]  # a distractor with no free spot in 20 draws is skipped
    assert max(counts) == 2 and sum(counts) >= 6, counts
    assert sum(s.looks["table"] is not None for s in scenes) >= 2 and all(s.looks["floor"] for s in scenes)
    kinds = {d["kind"] for s in scenes for d in s.distractors}
    assert len(kinds) >= 4, kinds
    for i in range(8):
        again = render_angles(world, build(world, scenes[i], asset_root), scenes[i], looks.angles[i])
        assert np.array_equal(again, looks.videos[i]), scenes[i].prompt
        fitted = fit_angles(world, scenes[i], looks.videos[i], asset_root=asset_root)
        err = np.abs(fitted - looks.angles[i])
        assert np.median(err) <= 1.5 and err.max() <= 7.0, (scenes[i].prompt, fitted, looks.angles[i])
    two = generate(world, 8, seed=11, config=LOOKS, asset_root=asset_root, workers=2)
    assert np.array_equal(two.videos, looks.videos) and two.scenes == scenes


def test_round_trip_and_bad_input(tmp_path, world: World, clips) -> None:
    path = tmp_path / "clips.npz"
    save_clips(path, clips)
    back = load_clips(path)
    assert np.array_equal(back.videos, clips.videos) and np.array_equal(back.angles, clips.angles)
    assert back.scenes == clips.scenes and back.prompts == clips.prompts and back.seed == 3
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a clip set"):
        load_clips(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="unknown clip prompt"):
        generate(world, 1, seed=0, prompts=("the laptop dances",))
    assert motion_angles(10.0, 70.0, 5).tolist() == pytest.approx([10.0, 18.79, 40.0, 61.21, 70.0], abs=0.01)


def test_bad_config_values_name_their_field() -> None:
    for field, kwargs in (("size", {"size": 20}), ("num_frames", {"num_frames": 1}), ("textured", {"textured": 1.5}),
                          ("looks", {"looks": -0.1}), ("distractors", {"distractors": (2, 1)}),
                          ("arm_share", {"arm_share": (0.5, 1.2)}), ("move_share", {"move_share": (0.9, 0.5)}),
                          ("pick_distance", {"pick_distance": (0.3, 1.2)})):
        with pytest.raises(ConfigError) as e:
            ClipConfig(**kwargs)
        assert e.value.field == field and str(e.value).startswith(f"{field} must")


def test_a_lamp_lowered_by_its_arm(world: World, asset_root: str) -> None:
    """``move_share``: the tilt a lamp clip moves through is carried by the arm at that share,
    its rest pose (the least tilted state) at ``arm_share``, in both directions; the pixels
    still measure the state."""
    config = ClipConfig(size=32, num_frames=9, split_starts=True, move_share=(0.6, 0.8))
    lamps = generate(world, 4, seed=3, config=config, asset_root=asset_root,
                     prompts=("the lamp lowers its head", "the lamp raises its head"))
    for scene, angles, video in zip(lamps.scenes, lamps.angles, lamps.videos, strict=True):
        assert 0.6 <= scene.move_share <= 0.8 and 0.2 <= scene.arm_share <= 0.5
        assert scene.rest_deg == pytest.approx(min(angles[0], angles[-1]), abs=1e-4)
        start, end = (joint_values(scene, float(a)) for a in (angles[0], angles[-1]))
        moved = math.radians(float(angles[-1] - angles[0]))
        assert (end[0] - start[0]) / moved == pytest.approx(scene.move_share, abs=1e-4)
        rest = joint_values(scene, scene.rest_deg)
        assert rest[0] == pytest.approx(scene.arm_share * math.radians(scene.rest_deg), abs=1e-6)
        err = np.abs(fit_angles(world, scene, video, asset_root=asset_root) - angles)
        assert np.median(err) <= 1.5 and err.max() <= 6.5, (scene.prompt, angles)


def test_a_pick_clip_carries_its_object_as_far_as_asked(world: World, asset_root: str) -> None:
    """``pick_distance``: the object starts that far from the plate's centre (the pick-banana
    task's layouts reach 44 cm; the default clips 16-30 cm), and is still put down on the plate."""
    def distances(config: ClipConfig) -> np.ndarray:
        picks = generate(world, 4, seed=4, config=config, asset_root=asset_root,
                         prompts=("the object is put on the plate",))
        ends = [np.hypot(*np.subtract(s.spec["end"][:2], s.spec["plate_xy"])) for s in picks.scenes]
        assert max(ends) <= 0.03, ends
        return np.array([np.hypot(*np.subtract(s.spec["start"][:2], s.spec["plate_xy"])) for s in picks.scenes])

    far = distances(ClipConfig(size=32, num_frames=9, pick_distance=(0.38, 0.44)))
    assert np.all((far >= 0.38) & (far <= 0.44)), far
    near = distances(CONFIG)
    assert np.all((near >= 0.16) & (near <= 0.30)), near


def test_start_states_of_the_two_prompts_overlap_unless_split(world: World, asset_root: str) -> None:
    """With shared start ranges the first frame does not give the motion away (the prior must
    read the text); ``split_starts`` reproduces the disjoint ranges of the first priors."""
    shared = generate(world, 24, seed=5, config=CONFIG, asset_root=asset_root,
                      prompts=("the laptop lid closes", "the laptop lid opens"))
    split = generate(world, 24, seed=5, config=ClipConfig(size=32, num_frames=9, split_starts=True),
                     asset_root=asset_root, prompts=("the laptop lid closes", "the laptop lid opens"))
    for clip_set, overlap in ((shared, True), (split, False)):
        closes = clip_set.angles[clip_set.prompt_ids == 0, 0]
        opens = clip_set.angles[clip_set.prompt_ids == 1, 0]
        assert (closes.min() < opens.max()) == overlap, (closes.round(), opens.round())
        assert (closes >= 35.0).all() and (opens <= 90.0).all()
    assert (split.angles[split.prompt_ids == 0, 0] >= 70.0).all()
    assert (split.angles[split.prompt_ids == 1, 0] <= 65.0).all()


def test_concatenated_clip_sets_keep_their_order_and_refuse_other_prompts(world: World, asset_root: str,
                                                                         clips) -> None:
    extra = generate(world, 2, seed=9, config=CONFIG, asset_root=asset_root)
    joined = concatenate_clips(clips, extra)
    assert len(joined) == 10 and np.array_equal(joined.videos[8:], extra.videos)
    assert joined.scenes[8:] == extra.scenes and list(joined.prompt_ids[8:]) == [0, 1]
    old = json.loads(json.dumps([asdict(s) for s in clips.scenes]))  # a set written before looks existed
    for scene in old:
        del scene["looks"], scene["distractors"], scene["textures"]
    assert tuple(ClipScene(**s) for s in old)[:2] == clips.scenes[:2]
    lamps = generate(world, 2, seed=9, config=CONFIG, asset_root=asset_root,
                     prompts=("the lamp lowers its head", "the lamp raises its head"))
    with pytest.raises(InputError, match="different prompts"):
        concatenate_clips(clips, lamps)


def test_a_textured_cloth_carries_the_fold_tasks_patches(world: World, asset_root: str) -> None:
    """``textured``: a fold clip's cloth carries the fold-fabric task's coloured patches around
    its colour (many colours on the cloth where a plain one has a few shades); the pixels
    still measure the fold."""
    from dataclasses import replace

    from sim.clips import build, render_angles

    config = ClipConfig(size=32, num_frames=9, split_starts=True, textured=1.0)
    folds = generate(world, 2, seed=3, config=config, asset_root=asset_root, prompts=("the cloth folds in half",))
    for scene, angles, video in zip(folds.scenes, folds.angles, folds.videos, strict=True):
        assert isinstance(scene.spec["patches"], int) and scene.spec["texture"] is None
        plain = replace(scene, spec={k: v for k, v in scene.spec.items() if k != "patches"})
        flat = render_angles(world, build(world, plain, asset_root), plain, angles[:1])[0]
        changed = np.abs(video[0].astype(int) - flat.astype(int)).max(-1) > 40
        assert changed.sum() >= 10, changed.sum()  # the patches differ from the plain colour (21, 14)

        def colours(image: np.ndarray) -> int:  # distinct colours, 16 levels a channel
            return len({tuple(c) for c in (image // 16).reshape(-1, 3)})

        assert colours(video[0]) >= colours(flat) + 8  # 20 against 7, 17 against 5 measured
        err = np.abs(fit_angles(world, scene, video, asset_root=asset_root) - angles)
        assert np.median(err) <= 1.5 and err.max() <= 7.0, (scene.spec, angles)
