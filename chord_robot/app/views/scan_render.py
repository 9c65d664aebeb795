"""The first frame of a scene, from its scan alone: the image a video generator starts from.

`chord-robot render --scan SCAN --camera auto -o first.png` writes it and its camera JSON;
any image-to-video model makes a video from it, and `chord-robot flow --prior video --video
V.mp4 --camera first.json` lifts that video to object flow (with no background image the
static scene is rendered from the scan behind the objects).

The automatic camera is the centre of the views the wan prior samples around the movable
objects (`flowgen.priors.cameras.CameraSampling`: azimuth -60 deg, elevation 25 deg, 1.25x the
distance that fits them), so the image is framed as the distillation's first frames are. The
scene is flowgen's own Gaussians of the scan (mesh objects fitted to their mesh renders), at
rest, lit as a flow run starts.
"""

from __future__ import annotations

import numpy as np

from chord_robot.camera import Camera, frame_points
from chord_robot.scene import Scene


def auto_camera(scene: Scene, width: int, height: int) -> Camera:
    """A camera framing every movable object of ``scene`` (all objects if none is movable),
    from the centre of the wan prior's sampled views."""
    from flowgen.priors.cameras import CameraSampling

    sampling = CameraSampling()
    objects = scene.movable() or scene.objects
    points = np.concatenate([obj.surface_points(2000, np.random.default_rng(0)) for obj in objects.values()])
    centre = lambda pair: 0.5 * (pair[0] + pair[1])  # noqa: E731
    return frame_points(points, width, height, azimuth_deg=centre(sampling.azimuth_deg),
                        elevation_deg=centre(sampling.elevation_deg), fov_y_deg=sampling.fov_y_deg,
                        margin=centre(sampling.margin))


def render_scene(scene: Scene, camera: Camera, config=None, backdrop=(0.0, 0.0, 0.0),
                 log=None, static_only: bool = False) -> np.ndarray:
    """(H, W, 3) uint8: ``scene`` at rest as flowgen models it, seen by ``camera``.

    Args:
        scene: the loaded scan.
        camera: the view (its size is the image's).
        config: the FlowConfig whose Gaussians are built (default: the video prior's cpu preset).
        backdrop: RGB in [0, 1] behind the scene (black: what the video prior renders behind
            the static scene when no background image is given).
        log: one-line messages (the mesh fits).
        static_only: only the static objects (the table ...): the background a video's moving
            objects are lifted over, from the scan alone.
    """
    import torch

    from chord_robot.app.flowconfig import flow_config
    from flowgen.model import build_model
    from flowgen.objective import rest_splats, static_splats
    from flowgen.splats import render_splats

    config = config or flow_config()
    model = build_model(scene, config, log=log)  # (the mesh fits optimise: not under no_grad)
    with torch.no_grad():
        splats = static_splats(model) if static_only else rest_splats(model)
        behind = torch.tensor(backdrop, dtype=torch.float32).expand(camera.height, camera.width, 3).contiguous()
        image = render_splats(splats, camera, behind)
    return (image.features[..., :3].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
