"""Videos of flows: a flow's points rendered as small Gaussians, frame by frame."""

from __future__ import annotations


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
    from flowgen.splats import point_splats, render_splats

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
