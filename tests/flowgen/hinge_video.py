"""A reference video of the hinged box, rendered by PyBullet's TinyRenderer (not flowgen's).

The scan comes from `chord_robot.synth.hinged_box`; here its parts become OBJ meshes (one per
colour patch, flat normals) in a URDF whose lid link turns on a revolute joint. Rendering at
a higher resolution than the run uses, the area downsampling in `fit_video` anti-aliases.
Test helper only: flowgen itself never imports pybullet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chord_robot.camera import Camera, save_cameras
from chord_robot.synth import HingedBox, PatchedPart

VIDEO_FRAMES = 41
LIGHT = (0.4, -0.6, 1.0)


@dataclass(frozen=True)
class HingeClip:
    """Paths of a rendered clip and the truth to compare with.

    Attributes:
        video: mp4 of the motion.
        camera: camera JSON (OpenCV convention) the video was rendered with.
        background: PNG of the same view without the box.
        times: (F,) clip time in [0, 1] of each video frame.
    """

    video: Path
    camera: Path
    background: Path
    times: np.ndarray


def default_camera(width: int = 320, height: int = 240) -> Camera:
    """A view from the front, above, slightly to the side of the box."""
    return Camera.look_at(np.array([0.34, -0.60, 0.66]), np.array([0.0, 0.04, 0.13]), width, height, fov_y_deg=32.0)


def _write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """An OBJ with one flat normal per face (vertices duplicated per face)."""
    from sim.assets import flat_obj_text

    path.write_text(flat_obj_text(vertices, faces))


def _visuals(part: PatchedPart, name: str, out: Path, offset: np.ndarray) -> str:
    """URDF <visual> elements, one OBJ per patch, vertices relative to the link frame."""
    xml = []
    for p, colour in enumerate(part.palette):
        faces = part.mesh.faces[part.face_patch == p]
        if len(faces) == 0:
            continue
        obj = out / f"{name}_{p}.obj"
        _write_obj(obj, np.asarray(part.mesh.vertices) - offset, faces)
        r, g, b = colour
        xml.append(
            f'<visual><geometry><mesh filename="{obj.name}"/></geometry>'
            f'<material name="{name}_{p}"><color rgba="{r:.4f} {g:.4f} {b:.4f} 1"/></material></visual>'
        )
    return "\n".join(xml)


def write_urdf(box: HingedBox, out: Path) -> tuple[Path, Path]:
    """A table URDF and a box URDF (base link + lid link on a revolute joint at the hinge)."""
    out.mkdir(parents=True, exist_ok=True)
    ext = box.table.mesh.extents
    r, g, b = box.table.color
    table = out / "table.urdf"
    table.write_text(
        f'<robot name="table"><link name="top"><visual><origin xyz="0 0 -0.02"/><geometry>'
        f'<box size="{ext[0]} {ext[1]} {ext[2]}"/></geometry><material name="wood"><color rgba="{r} {g} {b} 1"/>'
        "</material></visual></link></robot>"
    )
    o = box.hinge.origin
    ax = box.hinge.axis
    urdf = out / "box.urdf"
    urdf.write_text(
        f"""<robot name="hinged_box">
<link name="base">{_visuals(box.base, "base", out, np.zeros(3))}</link>
<link name="lid">{_visuals(box.lid, "lid", out, o)}</link>
<joint name="hinge" type="revolute"><parent link="base"/><child link="lid"/>
<origin xyz="{o[0]} {o[1]} {o[2]}"/><axis xyz="{ax[0]} {ax[1]} {ax[2]}"/>
<limit lower="-3.2" upper="3.2" effort="1" velocity="1"/></joint>
</robot>"""
    )
    return table, urdf


def _render(pb, client: int, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8 TinyRenderer image of an OpenCV camera (half-pixel corrected, as sim.world)."""
    near, far = 0.02, 10.0
    view = (np.diag([1.0, -1.0, -1.0, 1.0]) @ camera.camera_from_world).T.reshape(-1).tolist()
    cam = dataclasses.replace(camera, cx=camera.cx - 0.5, cy=camera.cy + 0.5)
    w, h = cam.width, cam.height
    proj = np.array([
        [2 * cam.fx / w, 0.0, 1 - 2 * cam.cx / w, 0.0],
        [0.0, 2 * cam.fy / h, 2 * cam.cy / h - 1, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ]).T.reshape(-1).tolist()
    _, _, rgba, _, _ = pb.getCameraImage(w, h, view, proj, lightDirection=list(LIGHT), shadow=0,
                                         renderer=pb.ER_TINY_RENDERER, flags=pb.ER_NO_SEGMENTATION_MASK,
                                         physicsClientId=client)
    return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()


def render_clip(box: HingedBox, out: Path, camera: Camera | None = None, frames: int = VIDEO_FRAMES) -> HingeClip:
    """Render the lid's motion to ``out/hinge.mp4`` with its camera JSON and background PNG."""
    import imageio.v3 as iio
    import pybullet as pb

    camera = camera or default_camera()
    table_urdf, box_urdf = write_urdf(box, out / "urdf")
    client = pb.connect(pb.DIRECT)
    try:
        pb.setAdditionalSearchPath(str(out / "urdf"), physicsClientId=client)
        pb.loadURDF(str(table_urdf), useFixedBase=True, physicsClientId=client)
        background = _render(pb, client, camera)
        body = pb.loadURDF(str(box_urdf), useFixedBase=True, physicsClientId=client)
        times = np.linspace(0.0, 1.0, frames)
        images = []
        for s in times:
            pb.resetJointState(body, 0, float(box.hinge.angle(s)), physicsClientId=client)
            images.append(_render(pb, client, camera))
    finally:
        pb.disconnect(client)
    clip = HingeClip(out / "hinge.mp4", out / "camera.json", out / "background.png", times)
    iio.imwrite(clip.video, np.stack(images), fps=10, codec="libx264", quality=9, macro_block_size=8)
    iio.imwrite(clip.background, background)
    save_cameras(clip.camera, camera)
    return clip
