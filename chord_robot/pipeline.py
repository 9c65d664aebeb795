"""Layer 2: wires the layer-1 packages into the user-facing operations the CLI calls.

Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from chord_robot.scan import MAX_POINTS, read_scan, scene_from_labels
from chord_robot.scene import Scene


def load_scene(path: str | os.PathLike[str], up: str = "z", scale: float = 1.0, max_points: int = MAX_POINTS) -> Scene:
    """Load a scan and split it into named objects (labels if present, else geometry)."""
    raw = read_scan(path, up=up, scale=scale, max_points=max_points)
    if raw.labels is not None:
        return scene_from_labels(raw, str(path))
    from flowgen.segment import segment_scan

    return segment_scan(raw, str(path))


# --------------------------------------------------------------------------- flow generation


def _file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a directory's files (names and contents)."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        h.update(str(q.relative_to(p) if p.is_dir() else q.name).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


def _flow_fps(video: str | os.PathLike[str], num_frames: int, default: float = 10.0) -> float:
    """Frame rate of a flow of ``num_frames`` spanning the video's duration (metadata; else
    ``default``)."""
    try:
        import imageio.v3 as iio

        meta = iio.immeta(video)
        fps, duration = float(meta["fps"]), float(meta["duration"])
    except Exception:  # no or unreadable metadata (e.g. a .npy clip): keep the default
        return default
    source_frames = round(fps * duration)
    if fps <= 0 or source_frames < 2:
        return default
    return fps * (num_frames - 1) / (source_frames - 1)


def flow_config(preset: str = "cpu", prior: str = "video", frames: int | None = None,
                iterations: int | None = None, seed: int | None = None):
    """The named `flowgen` preset with the CLI's overrides applied.

    ``iterations`` sets the motion iterations; the appearance stage scales with it (at least
    one iteration when the preset has one). Raises InputError for an unknown preset or a
    value out of range.
    """
    import dataclasses

    from chord_robot.errors import InputError
    from flowgen.config import PRESETS

    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    if prior not in ("video", "wan"):
        raise InputError(f"unknown prior {prior!r}; one of video, wan")
    config = PRESETS[preset](prior)
    changes: dict = {}
    if frames is not None:
        if frames < 2:
            raise InputError(f"--frames must be at least 2 (frame 0 is the scan's pose), got {frames}")
        changes["num_frames"] = frames
    if iterations is not None:
        if iterations < 1:
            raise InputError(f"--iters must be at least 1, got {iterations}")
        changes["iterations"] = iterations
        if config.appearance_iterations:
            changes["appearance_iterations"] = max(
                1, round(config.appearance_iterations * iterations / config.iterations))
        changes["checkpoint_every"] = max(1, min(config.checkpoint_every, iterations // 4 or 1))
    if seed is not None:
        changes["seed"] = seed
    return dataclasses.replace(config, **changes)


def checkpoint_path(output: str | os.PathLike[str]):
    """Where a flow run keeps its checkpoint: beside the output, ``FLOW.zarr.ckpt``."""
    from pathlib import Path

    out = Path(output)
    return out.with_name(out.name + ".ckpt")


@dataclass(frozen=True)
class FlowInputs:
    """Validated inputs of a flow run (see :func:`prepare_flow`).

    Attributes:
        scene: the segmented scan.
        guides: the guidance videos fitted to the run (`flowgen.priors.video_io.GuideVideo`).
        config: the run's `flowgen.config.FlowConfig`.
        fingerprint: identifies config and input files (a checkpoint must match it).
        fps: frame rate of the flow (the videos' duration over its frames).
    """

    scene: Scene
    guides: tuple
    config: object
    fingerprint: str
    fps: float


def prepare_flow(
    scan: str | os.PathLike[str],
    *,
    videos: list,
    cameras: list,
    backgrounds: list | None = None,
    config=None,
    task: str = "",
    up: str = "z",
    scale: float = 1.0,
) -> FlowInputs:
    """Load and check every input of a flow run before any optimisation.

    A bad scan, a video whose size or frame count does not fit its camera or the run, a camera
    that is not rigid, or a scene with nothing to move raises InputError (exit 2).
    """
    import json
    from dataclasses import asdict
    from pathlib import Path

    from chord_robot.errors import InputError

    if config is None:
        config = flow_config()
    if config.prior != "video":
        raise InputError(
            "the wan prior (Wan 2.2 SDS) needs a CUDA GPU and its weights and is not available in "
            "this build; use --prior video with --video V.mp4 --camera CAM.json"
        )
    scene = load_scene(scan, up=up, scale=scale)
    if not scene.movable():
        raise InputError(
            f"{scan} has no movable object (every object is static: {', '.join(scene.objects)}); "
            "label the object to animate, or give it a name other than a support's"
        )
    from flowgen.priors.video_io import load_guides

    guides = load_guides([Path(v) for v in videos], [Path(c) for c in cameras], config.num_frames,
                         config.max_side, [Path(b) for b in backgrounds] if backgrounds else None)
    fingerprint = json.dumps({
        "config": asdict(config), "task": task, "up": up, "scale": scale,
        "inputs": [_file_digest(p) for p in [scan, *videos, *cameras, *(backgrounds or [])]],
    }, sort_keys=True, default=str)
    return FlowInputs(scene, tuple(guides), config, fingerprint, _flow_fps(videos[0], config.num_frames))


def generate_flow(
    inputs: FlowInputs,
    task: str,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress=None,
    log=None,
):
    """CHORD flow generation with the video prior: validated inputs -> ObjectFlow at ``output``.

    The run checkpoints beside the output (:func:`checkpoint_path`); ``resume`` continues from
    that checkpoint when it was made with the same inputs and settings. The flow is written
    atomically and the checkpoint removed once it is.

    Args:
        inputs: from :func:`prepare_flow`.
        task: the task text (stored in the flow).
        output: FLOW.zarr to write.
        resume: continue a killed run.
        progress: callback (done, total, loss terms) per iteration.
        log: callback for one-line messages.

    Returns:
        (flow, summary): the ObjectFlow written and a dict of run figures.
    """
    import time
    from pathlib import Path

    from chord_robot.errors import InputError

    start = time.time()
    out = Path(output)
    if out.exists() and not (out.is_dir() and (out / "zarr.json").exists()):
        raise InputError(f"{out} exists and is not a flow store; choose another -o path")

    from flowgen.export import export_flow, reproduction_error
    from flowgen.model import build_model
    from flowgen.optimize import optimize
    from flowgen.priors.video import VideoPrior

    config = inputs.config
    model = build_model(inputs.scene, config)
    prior = VideoPrior(inputs.guides, config.photometric_ssim, config.silhouette)
    ckpt = checkpoint_path(out)
    state = optimize(model, prior, config, checkpoint_path=ckpt, resume=resume,
                     fingerprint=inputs.fingerprint, progress=progress, log=log)
    flow = export_flow(model, config, task, fps=inputs.fps)
    flow.save(out)
    ckpt.unlink(missing_ok=True)
    summary = {
        "iterations": state.iteration,
        "rollbacks": state.rollbacks,
        "final_loss": state.history[-1]["total"] if state.history else float("nan"),
        "seconds": time.time() - start,
        "reproduction_mm": {n: 1000 * reproduction_error(m) for n, m in flow.moving().items()},
    }
    return flow, summary


def render_flow(flow, camera=None, width: int = 480, height: int = 360, background=(1.0, 1.0, 1.0)):
    """(T, H, W, 3) uint8 frames of a flow's points rendered as small Gaussians.

    Args:
        flow: an ObjectFlow.
        camera: a `Camera`, or None for a view from the front, above, framing every object.
        width, height: image size when the camera is chosen automatically.
        background: RGB in [0, 1].
    """
    import numpy as np

    from chord_robot.camera import Camera
    from flowgen.render import point_splats, render_splats

    pts = np.concatenate([m.points for m in flow.objects.values()])
    if camera is None:
        lo, hi = pts.min(0), pts.max(0)
        centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
        direction = np.array([0.45, -0.75, 0.5]) / np.linalg.norm([0.45, -0.75, 0.5])
        distance = max(radius, 1e-3) / np.tan(np.radians(40.0) / 2) * 1.1
        camera = Camera.look_at(centre + distance * direction, centre, width, height, fov_y_deg=40.0)
    import torch

    bg = torch.tensor(background, dtype=torch.float32).expand(camera.height, camera.width, 3).contiguous()
    frames = []
    with torch.no_grad():
        for t in range(flow.num_frames):
            splats = point_splats(flow, t)
            image = render_splats(splats, camera, bg)
            frames.append((image.features[..., :3].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    return np.stack(frames)
