"""Short rendered clips of objects moving as a prompt says: the training set of the small video
prior (issues #9, #16).

Each clip shows one object moving on the table - a laptop whose lid closes or opens, a desk lamp
that lowers or raises its head, a small object (banana, block, can) put on a plate or taken off
it, a cloth folded in half or unfolded (`sim.clip_objects`) - from a random camera, with a
random size, pose, colours, light and start state, and optionally procedural textures, a floor
and 0-2 static distractors (`sim.clip_looks`), rendered by PyBullet's TinyRenderer (the sim's
renderer, not flowgen's, so a prior trained on these clips does not learn flowgen's rendering).
Everything moves kinematically (no physics) along a smooth ease-in-out from start to end state.

Stored with every clip: its prompt, the camera (OpenCV convention, as `chord_robot.camera`), the
scene parameters needed to rebuild it, and the ground-truth joint angles per frame. The scene
parameters let `fit_angles` measure the angle in *any* video of that scene (a sampled one) by
rendering the object at candidate angles and keeping the best match per frame.

A dataset is an ``.npz`` written atomically (`sim.clip_files`).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pybullet as pb

from chord_robot.camera import Camera
from chord_robot.errors import ConfigError, InputError
from sim import assets, clip_looks, clip_objects
from sim.render import render
from sim.world import World, matrix_to_xyzw, reset

Progress = Callable[[int, int], None]
ClipKind = Literal["laptop", "lamp", "pick", "fold"]


@dataclass(frozen=True)
class Motion:
    """One prompted motion: which object, which way, over what range.

    Attributes:
        prompt: the text.
        kind: "laptop", "lamp", "pick" or "fold".
        direction: +1 the measured state grows (lid opens, head lowers, object nears the plate,
            cloth folds), -1 it shrinks.
        start_deg: range of the measured state at frame 0 (degrees; pick: percent of the
            carry). The two prompts of one object share most of it, so the first frame alone
            does not tell which way the object will move: the prior has to read the text.
        travel_deg: range of how far it moves over the clip, degrees.
        split_start_deg: the start range of the first trained priors (v1, v2 in
            docs/trained-prior.md), disjoint between the two prompts of an object: a model can then
            predict the motion from the first frame and ignore the text (``ClipConfig.split_starts``).
    """

    prompt: str
    kind: ClipKind
    direction: int
    start_deg: tuple[float, float]
    travel_deg: tuple[float, float]
    split_start_deg: tuple[float, float]


MOTIONS: dict[str, Motion] = {
    m.prompt: m
    for m in (
        Motion("the laptop lid closes", "laptop", -1, (35.0, 125.0), (45.0, 90.0), (70.0, 125.0)),
        Motion("the laptop lid opens", "laptop", +1, (0.0, 90.0), (45.0, 90.0), (0.0, 65.0)),
        Motion("the lamp lowers its head", "lamp", +1, (-20.0, 75.0), (35.0, 60.0), (-20.0, 40.0)),
        Motion("the lamp raises its head", "lamp", -1, (15.0, 100.0), (35.0, 60.0), (45.0, 100.0)),
        Motion("the object is put on the plate", "pick", +1, (0.0, 8.0), (92.0, 100.0), (0.0, 8.0)),
        Motion("the object is taken off the plate", "pick", -1, (92.0, 100.0), (92.0, 100.0), (92.0, 100.0)),
        Motion("the cloth folds in half", "fold", +1, (0.0, 15.0), (140.0, 175.0), (0.0, 15.0)),
        Motion("the cloth unfolds", "fold", -1, (150.0, 180.0), (130.0, 170.0), (150.0, 180.0)),
    )
}
"""Prompt -> its motion (the registry). The laptop's angle is the lid hinge (0 closed); the
lamp's is the head's downward tilt, arm + head joint, split between the two joints; pick's the
percent of the carry from the table (0) to the plate (100); fold's the fold angle (0 flat)."""

ARTICULATED_PROMPTS = tuple(p for p, m in MOTIONS.items() if m.kind in ("laptop", "lamp"))
"""The first four motions (the priors of docs/trained-prior.md knew only these)."""

LAPTOP_RANGE_DEG = (0.0, 125.0)
LAMP_RANGE_DEG = (-45.0, 140.0)
STATE_RANGE = {"laptop": LAPTOP_RANGE_DEG, "lamp": LAMP_RANGE_DEG, "pick": clip_objects.PICK_RANGE,
               "fold": clip_objects.FOLD_RANGE}
"""The measured state's range per kind."""


@dataclass(frozen=True)
class ClipConfig:
    """Size of the clips and the randomisation ranges."""

    size: int = 32
    """Height and width in pixels (square)."""
    num_frames: int = 9
    """T, frames per clip (1 + 4k for the Wan VAE)."""
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    """Camera azimuth around the object, relative to its front, degrees."""
    elevation_deg: tuple[float, float] = (12.0, 50.0)
    """Camera elevation above the table, degrees."""
    margin: tuple[float, float] = (1.0, 1.35)
    """Distance as a multiple of the one that just fits the object's bounding sphere."""
    fov_deg: tuple[float, float] = (40.0, 50.0)
    """Vertical field of view, degrees."""
    colour_jitter: float = 0.25
    """Each colour channel of each part is the default +- this (clipped to [0.05, 0.95])."""
    split_starts: bool = False
    """Start states from the prompts' disjoint ``Motion.split_start_deg`` (the v1, v2 priors')."""
    textured: float = 0.0
    """Fraction of clips whose laptop, lamp or cloth carries the sim tasks' coloured patches (a random seed each)."""
    looks: float = 0.0
    """Probability that each surface (table, floor, each of the object's parts, each distractor)
    carries a procedural texture (`sim.clip_looks`: checkers, stripes, noise, blotches, plain)."""
    distractors: tuple[int, int] = (0, 0)
    """Range (inclusive) of static objects standing on the table (fewer when they find no free
    spot, `clip_looks.sample_distractors`)."""
    free_colours: float = 0.0
    """Fraction of clips whose moving object takes any colours, not its default +- jitter."""
    floor: bool = False
    """A coloured or textured floor below the table instead of the empty backdrop."""
    arm_share: tuple[float, float] = (0.2, 0.5)
    """Range of the fraction of a lamp head's tilt that its arm joint carries."""
    move_share: tuple[float, float] | None = None
    """Range of the arm's share of the tilt a lamp clip moves through, its rest pose keeping
    ``arm_share`` (a desk lamp is lowered by its arm: the lower-lamp task's ~0.65); None: same."""
    pick_distance: tuple[float, float] | None = None
    """Range of a pick clip's object-to-plate-centre distance (m; at least the plate's radius +
    7 cm); None: 16-30 cm (the pick-banana task's layouts: 21-44 cm)."""

    def __post_init__(self) -> None:
        if self.size % 16 or self.size < 16:
            raise ConfigError("size", f"{{field}} must be a positive multiple of 16, got {self.size}")
        if self.num_frames < 2:
            raise ConfigError("num_frames", f"{{field}} must be >= 2, got {self.num_frames}")
        for name in ("textured", "looks", "free_colours"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(name, f"{{field}} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.distractors[0] <= self.distractors[1] <= 4:
            raise ConfigError("distractors", f"{{field}} must be a range within 0..4, got {self.distractors}")
        for name in ("arm_share", "move_share", "pick_distance"):
            share = getattr(self, name)
            if share is not None and not 0.0 <= share[0] <= share[1] <= 1.0:
                raise ConfigError(name, f"{{field}} must be a range within [0, 1], got {share}")


@dataclass(frozen=True)
class ClipScene:
    """Everything needed to rebuild a clip's scene (JSON-able).

    Attributes:
        prompt: the motion's prompt.
        kind: "laptop", "lamp", "pick" or "fold".
        spec: the asset spec fields (`assets.LaptopSpec` or `assets.LampSpec`; pick and fold:
            the scene dicts of `sim.clip_objects`).
        pose: (4, 4) base pose in the world, as nested lists (pick, fold: identity; the poses
            are in ``spec``).
        colours: RGBA per link index (-1 the base), as lists; empty for a textured object
            (pick: "object", "plate"; fold: "cloth").
        table_rgba: the table's colour.
        light: light direction.
        arm_share: lamp only: the fraction of the head's tilt the arm joint carries.
        camera: the camera as `Camera.to_dict`.
        looks: the table's texture and the floor (`clip_looks.sample_looks`; empty: neither).
        distractors: the static objects on the table (`clip_looks.sample_distractors`).
        textures: laptop, lamp: procedural textures per link index.
        move_share: lamp only: the arm's share of the tilt beyond ``rest_deg`` (None: none).
        rest_deg: lamp only: the tilt (the clip's least) up to which ``arm_share`` holds.
    """

    prompt: str
    kind: ClipKind
    spec: dict
    pose: list
    colours: dict[str, list[float]]
    table_rgba: list[float]
    light: list[float]
    arm_share: float
    camera: dict = field(default_factory=dict)
    looks: dict = field(default_factory=dict)
    distractors: list = field(default_factory=list)
    textures: dict = field(default_factory=dict)
    move_share: float | None = None
    rest_deg: float = 0.0

    def to_camera(self) -> Camera:
        return Camera.from_dict(self.camera)


@dataclass(frozen=True)
class ClipSet:
    """A set of clips.

    Attributes:
        videos: (B, T, H, W, 3) uint8, B clips.
        angles: (B, T) float32 the measured angle of each frame, degrees (see MOTIONS).
        prompts: the prompt texts, in the order ``prompt_ids`` index them.
        prompt_ids: (B,) int64.
        scenes: per clip, its `ClipScene`.
        seed: the seed the set was generated from.
    """

    videos: np.ndarray
    angles: np.ndarray
    prompts: tuple[str, ...]
    prompt_ids: np.ndarray
    scenes: tuple[ClipScene, ...]
    seed: int

    def __post_init__(self) -> None:
        n = len(self.videos)
        assert self.videos.ndim == 5 and self.videos.shape[-1] == 3, self.videos.shape
        assert self.angles.shape == self.videos.shape[:2], (self.angles.shape, self.videos.shape)
        assert self.prompt_ids.shape == (n,) and len(self.scenes) == n

    def __len__(self) -> int:
        return len(self.videos)


# --------------------------------------------------------------------------- scenes


def _ease(t: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 (cosine ease-in-out) at times t in [0, 1]."""
    return 0.5 - 0.5 * np.cos(np.pi * t)


def motion_angles(start_deg: float, end_deg: float, num_frames: int) -> np.ndarray:
    """(T,) angles, degrees, easing from ``start_deg`` to ``end_deg``."""
    return start_deg + (end_deg - start_deg) * _ease(np.linspace(0.0, 1.0, num_frames))


def _jitter(rng: np.random.Generator, rgba: tuple[float, ...], amount: float) -> list[float]:
    rgb = np.clip(np.asarray(rgba[:3]) + rng.uniform(-amount, amount, 3), 0.05, 0.95)
    return [*map(float, rgb), 1.0]


def _yaw_pose(yaw: float, xyz: tuple[float, float, float]) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = xyz
    return m


def _sample_scene(motion: Motion, rng: np.random.Generator, config: ClipConfig) -> tuple[ClipScene, float, float]:
    """A random scene for ``motion`` and its start and end states, camera unset."""
    yaw = rng.uniform(-math.pi, math.pi)
    xy = np.array([0.4, 0.0]) + rng.uniform(-0.05, 0.05, 2)  # mid-table
    table = _jitter(rng, (0.72, 0.58, 0.42, 1.0), config.colour_jitter)
    light = [float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.8, 0.8)), 1.0]
    texture = int(rng.integers(1 << 30)) if rng.uniform() < config.textured else None
    pose, arm_share, keep_out = _yaw_pose(yaw, (*xy, 0.0)), 0.0, [xy]
    if motion.kind == "laptop":
        spec = assets.LaptopSpec(width=round(rng.uniform(0.24, 0.36), 3), depth=round(rng.uniform(0.17, 0.25), 3),
                                 texture_seed=texture)
        pose[2, 3] = spec.base_thickness / 2
        colours = {"-1": _jitter(rng, assets.LAPTOP_BASE_RGBA, config.colour_jitter),
                   "0": _jitter(rng, assets.LAPTOP_LID_RGBA, config.colour_jitter)}
    elif motion.kind == "lamp":
        spec = assets.LampSpec(arm_length=round(rng.uniform(0.2, 0.3), 3),
                               shade_radius=round(rng.uniform(0.035, 0.055), 3), texture_seed=texture)
        pose[2, 3] = spec.base_height / 2
        colours = {"-1": _jitter(rng, assets.LAMP_RGBA, config.colour_jitter),
                   "0": _jitter(rng, assets.LAMP_RGBA, config.colour_jitter),
                   "1": _jitter(rng, assets.LAMP_HEAD_RGBA, config.colour_jitter)}
    else:
        sample = clip_objects.sample_pick if motion.kind == "pick" else clip_objects.sample_fold
        extra = (config.pick_distance,) if motion.kind == "pick" else ()
        spec, colours, keep_out = sample(rng, config.colour_jitter, config.free_colours, config.looks, *extra)
        if motion.kind == "fold" and texture is not None and spec["texture"] is None:
            spec["patches"] = texture  # the fold-fabric task's patches around the cloth's colour
        pose = np.eye(4)
    if texture is not None and motion.kind in ("laptop", "lamp"):  # the patches carry the colours
        colours = {}
    start = rng.uniform(*(motion.split_start_deg if config.split_starts else motion.start_deg))
    end = float(np.clip(start + motion.direction * rng.uniform(*motion.travel_deg), *STATE_RANGE[motion.kind]))
    move_share = None
    if motion.kind in ("laptop", "lamp"):
        arm_share = float(rng.uniform(*config.arm_share))
        if motion.kind == "lamp" and config.move_share is not None:
            move_share = float(rng.uniform(*config.move_share))
    looks, distractors, textures = {}, [], {}
    if config.looks or config.floor or config.distractors[1] or config.free_colours:
        if motion.kind in ("laptop", "lamp") and colours:
            if rng.uniform() < config.free_colours:
                colours = {k: [*rng.uniform(0.05, 0.95, 3).round(3).tolist(), 1.0] for k in colours}
            textures = {k: clip_looks.texture_spec(rng) for k in colours if rng.uniform() < config.looks}
        looks = clip_looks.sample_looks(rng, config.looks, config.floor)
        reach = {"laptop": 0.22, "lamp": 0.25, "pick": 0.1, "fold": 0.2}[motion.kind]
        distractors = clip_looks.sample_distractors(rng, config.distractors, config.looks, np.asarray(keep_out), reach)
    spec_dict = spec if isinstance(spec, dict) else asdict(spec)
    scene = ClipScene(motion.prompt, motion.kind, spec_dict, pose.tolist(), colours, table, light, arm_share,
                      looks=looks, distractors=distractors, textures=textures, move_share=move_share,
                      rest_deg=float(min(start, end)) if move_share is not None else 0.0)
    return scene, float(start), end


def _spec(scene: ClipScene) -> assets.LaptopSpec | assets.LampSpec:
    return assets.LaptopSpec(**scene.spec) if scene.kind == "laptop" else assets.LampSpec(**scene.spec)


def joint_values(scene: ClipScene, angle_deg: float) -> dict[int, float]:
    """Joint index -> value (rad) that puts an articulated object at the measured ``angle_deg``."""
    a = math.radians(angle_deg)
    if scene.kind == "laptop":
        return {0: a}
    if scene.move_share is None:
        return {0: scene.arm_share * a, 1: (1.0 - scene.arm_share) * a}
    rest = math.radians(scene.rest_deg)
    arm = scene.arm_share * min(a, rest) + scene.move_share * max(a - rest, 0.0)
    return {0: arm, 1: a - arm}


def _points(scene: ClipScene, angles_deg: np.ndarray) -> np.ndarray:
    """(M, 3) world points of the moving object at the given states (for framing the camera)."""
    if scene.kind == "pick":
        return clip_objects.pick_points(scene.spec, angles_deg)
    if scene.kind == "fold":
        return clip_objects.fold_points(scene.spec, angles_deg)
    spec, pose = _spec(scene), np.asarray(scene.pose)
    pts = []
    for a in angles_deg:
        j = joint_values(scene, float(a))
        if scene.kind == "laptop":
            links, meshes = assets.laptop_link_poses(spec, j[0]), assets.laptop_meshes(spec)
        else:
            links, meshes = assets.lamp_link_poses(spec, j[0], j[1]), assets.lamp_meshes(spec)
        for name, mesh in meshes.items():
            v = np.asarray(mesh.vertices)
            pts.append((pose @ links[name] @ np.c_[v, np.ones(len(v))].T).T[:, :3])
    return np.concatenate(pts)


def _sample_camera(rng: np.random.Generator, scene: ClipScene, angles_deg: np.ndarray,
                   config: ClipConfig) -> Camera:
    pts = _points(scene, angles_deg)
    centre = 0.5 * (pts.min(0) + pts.max(0))
    radius = float(np.linalg.norm(pts - centre, axis=1).max())
    fov = rng.uniform(*config.fov_deg)
    front = math.atan2(scene.pose[1][0], scene.pose[0][0])
    az = front + math.radians(rng.uniform(*config.azimuth_deg))
    el = math.radians(rng.uniform(*config.elevation_deg))
    dist = radius / math.sin(math.radians(fov) / 2) * rng.uniform(*config.margin)
    eye = centre + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return Camera.look_at(eye, centre, config.size, config.size, fov_y_deg=fov)


class _Joints:
    """An articulated clip object: `set` puts its joints at a measured angle."""

    def __init__(self, world: World, body: int, scene: ClipScene):
        self.world, self.body, self.scene = world, body, scene

    def set(self, angle_deg: float) -> None:
        for joint, value in joint_values(self.scene, angle_deg).items():
            pb.resetJointState(self.body, joint, value, 0.0, physicsClientId=self.world.client)


def build(world: World, scene: ClipScene, asset_root: str | None = None) -> _Joints | clip_objects.Poser:
    """Reset ``world`` to the clip's scene (table, its looks, distractors, the moving object);
    returns the object's poser (`set(state)` puts it in a state)."""
    table = reset(world)
    c = world.client
    assert table is not None
    pb.changeVisualShape(table.id, -1, rgbaColor=scene.table_rgba, physicsClientId=c)
    clip_looks.apply_looks(world, table.id, scene.looks, scene.distractors, asset_root)
    if scene.kind in ("pick", "fold"):
        return clip_objects.Poser(world, scene.kind, scene.spec, scene.colours, asset_root)
    spec = _spec(scene)
    path = assets.write_laptop(spec, asset_root) if scene.kind == "laptop" else assets.write_lamp(spec, asset_root)
    pos, orn = matrix_to_xyzw(np.asarray(scene.pose))
    body = pb.loadURDF(str(path), pos, orn, useFixedBase=True, physicsClientId=c)
    for link, rgba in scene.colours.items():
        pb.changeVisualShape(body, int(link), rgbaColor=rgba, physicsClientId=c)
    clip_looks.texture_links(world, body, scene.textures, asset_root)
    return _Joints(world, body, scene)


def render_angles(world: World, poser: _Joints | clip_objects.Poser, scene: ClipScene,
                  angles_deg: np.ndarray) -> np.ndarray:
    """(len(angles), H, W, 3) uint8 frames of the built scene at each measured state."""
    camera, frames = scene.to_camera(), []
    for a in angles_deg:
        poser.set(float(a))
        frames.append(render(world, camera, segmentation=False, light_direction=tuple(scene.light)).rgb)
    return np.stack(frames)


def make_clip(world: World, motion: Motion, rng: np.random.Generator, config: ClipConfig,
              asset_root: str | None = None) -> tuple[np.ndarray, np.ndarray, ClipScene]:
    """One random clip of ``motion``: (T, H, W, 3) uint8 frames, (T,) states, its scene."""
    scene, start, end = _sample_scene(motion, rng, config)
    angles = motion_angles(start, end, config.num_frames)
    camera = _sample_camera(rng, scene, angles, config)
    scene = ClipScene(**{**asdict(scene), "camera": camera.to_dict()})
    poser = build(world, scene, asset_root)
    return render_angles(world, poser, scene, angles), angles.astype(np.float32), scene


def _render_range(world: World, start: int, stop: int, seed: int, config: ClipConfig,
                  prompts: tuple[str, ...], asset_root: str | None,
                  progress: Progress | None = None) -> list[tuple[np.ndarray, np.ndarray, int, ClipScene]]:
    """Clips ``start .. stop - 1`` of a set: (video, angles, prompt index, scene) each;
    ``progress(done, stop - start)`` after each."""
    out = []
    for i in range(start, stop):
        k = i % len(prompts)
        video, a, scene = make_clip(world, MOTIONS[prompts[k]], np.random.default_rng([seed, i]), config, asset_root)
        out.append((video, a, k, scene))
        if progress is not None:
            progress(i + 1 - start, stop - start)
    return out


_WORKER_WORLD: World | None = None


def _worker_range(start: int, stop: int, seed: int, config: ClipConfig, prompts: tuple[str, ...],
                  asset_root: str | None) -> list[tuple[np.ndarray, np.ndarray, int, ClipScene]]:
    """`_render_range` in a worker process, on a world of its own kept for its later chunks."""
    global _WORKER_WORLD
    if _WORKER_WORLD is None:
        from sim import world as sim_world

        _WORKER_WORLD = sim_world.create()
    return _render_range(_WORKER_WORLD, start, stop, seed, config, prompts, asset_root)


def generate(world: World, count: int, seed: int, config: ClipConfig | None = None,
             prompts: tuple[str, ...] | None = None, asset_root: str | None = None,
             progress: Progress | None = None, workers: int = 1) -> ClipSet:
    """``count`` clips, cycling through ``prompts`` (default all of MOTIONS); clip i draws from
    ``np.random.default_rng([seed, i])``, so a set is a pure function of (seed, count, config)
    whatever the number of ``workers``.

    Args:
        world: a PyBullet world (it is reset for each clip).
        count: number of clips.
        seed: the set's seed (use different seeds for training and held-out sets).
        config: sizes and ranges.
        prompts: which motions (keys of MOTIONS).
        asset_root: asset cache directory.
        progress: called with (done, count) after each clip (after each chunk of clips with
            workers > 1).
        workers: rendering processes (each with its own PyBullet client; ``world`` is then unused).
    """
    config = config or ClipConfig()
    prompts = tuple(prompts or MOTIONS)
    unknown = [p for p in prompts if p not in MOTIONS]
    if unknown:
        raise InputError(f"unknown clip prompt(s) {unknown}; known: {list(MOTIONS)}")
    if count < 1:
        raise InputError(f"count must be >= 1, got {count}")
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    if workers == 1 or count < 2 * workers:
        clips = _render_range(world, 0, count, seed, config, prompts, asset_root, progress)
    else:
        chunk = max(1, min(50, count // (4 * workers)))
        bounds = [(a, min(a + chunk, count)) for a in range(0, count, chunk)]
        parts: dict[int, list] = {}
        # spawn, not fork: the parent may hold torch's thread pool and a PyBullet client
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_worker_range, a, b, seed, config, prompts, asset_root): a for a, b in bounds}
            finished = 0
            for future in as_completed(futures):
                parts[futures[future]] = future.result()
                finished += len(parts[futures[future]])
                if progress is not None:
                    progress(finished, count)
        clips = [clip for a, _ in bounds for clip in parts[a]]
    videos, angles, ids, scenes = zip(*clips)
    return ClipSet(np.stack(videos), np.stack(angles), prompts, np.asarray(ids, np.int64), tuple(scenes), seed)


def fit_angles(world: World, scene: ClipScene, video: np.ndarray, step_deg: float = 2.5,
               asset_root: str | None = None) -> np.ndarray:
    """The measured angle of each frame of ``video`` (any video of ``scene``'s object from its
    camera, e.g. one a model generated): the candidate angle, on a ``step_deg`` grid over the
    object's range, whose render is nearest the frame in mean squared pixel error.

    Args:
        video: (T, H, W, 3) uint8 at the scene camera's size.
    Returns:
        (T,) angles, degrees.
    """
    cam = scene.to_camera()
    assert video.ndim == 4 and video.shape[1:] == (cam.height, cam.width, 3), video.shape
    lo, hi = STATE_RANGE[scene.kind]
    grid = np.arange(lo, hi + 1e-6, step_deg)
    poser = build(world, scene, asset_root)
    refs = render_angles(world, poser, scene, grid).astype(np.float32)  # (G, H, W, 3)
    err = ((video[:, None].astype(np.float32) - refs[None]) ** 2).mean(axis=(2, 3, 4))  # (T, G)
    return grid[err.argmin(axis=1)].astype(np.float32)
