"""Pinhole cameras in the OpenCV convention (x right, y down, z forward), and their JSON.

JSON (DESIGN.md §3)::

    {"width": W, "height": H, "fx": .., "fy": .., "cx": .., "cy": ..,
     "world_from_camera": [[4x4]]}

A file may hold one such object or a list of them (a trajectory of cameras).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chord_robot.atomic import write_text_atomic
from chord_robot.errors import CameraError

_RIGID_TOL = 1e-4


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        world_from_camera: (4, 4) rigid transform taking camera coordinates to world.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_from_camera: np.ndarray  # (4, 4)

    def __post_init__(self) -> None:
        m = np.asarray(self.world_from_camera, dtype=np.float64)
        object.__setattr__(self, "world_from_camera", m)
        validate_camera_fields(self.width, self.height, self.fx, self.fy, m)

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def camera_from_world(self) -> np.ndarray:
        """(4, 4) view matrix, the inverse of ``world_from_camera``."""
        r = self.world_from_camera[:3, :3]
        t = self.world_from_camera[:3, 3]
        out = np.eye(4)
        out[:3, :3] = r.T
        out[:3, 3] = -r.T @ t
        return out

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in the world."""
        return self.world_from_camera[:3, 3].copy()

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixels.

        Args:
            points: (N, 3) world coordinates.
        Returns:
            uv: (N, 2) pixel coordinates (u right, v down; pixel centres at integer + 0.5).
            depth: (N,) camera-frame z; points with depth <= 0 are behind the camera.
        """
        points = np.asarray(points, dtype=np.float64)
        assert points.ndim == 2 and points.shape[1] == 3, points.shape
        cam = points @ self.camera_from_world[:3, :3].T + self.camera_from_world[:3, 3]
        z = cam[:, 2]
        safe = np.where(np.abs(z) < 1e-12, 1e-12, z)
        uv = np.stack([self.fx * cam[:, 0] / safe + self.cx, self.fy * cam[:, 1] / safe + self.cy], 1)
        return uv, z

    def to_dict(self) -> dict:
        """The JSON object of DESIGN.md §3."""
        return {
            "width": int(self.width),
            "height": int(self.height),
            "fx": float(self.fx),
            "fy": float(self.fy),
            "cx": float(self.cx),
            "cy": float(self.cy),
            "world_from_camera": self.world_from_camera.tolist(),
        }

    @staticmethod
    def from_dict(d: dict) -> Camera:
        """Parse one camera object; raises CameraError with what is wrong."""
        if not isinstance(d, dict):
            raise CameraError(f"a camera must be a JSON object, got {type(d).__name__}")
        missing = [k for k in ("width", "height", "fx", "fy", "cx", "cy", "world_from_camera") if k not in d]
        if missing:
            raise CameraError(f"camera JSON is missing {', '.join(missing)}")
        try:
            m = np.asarray(d["world_from_camera"], dtype=np.float64)
            vals = [float(d[k]) for k in ("fx", "fy", "cx", "cy")]
            width, height = int(d["width"]), int(d["height"])
        except (TypeError, ValueError) as e:
            raise CameraError(f"camera JSON has a non-numeric field: {e}") from None
        if m.shape != (4, 4):
            raise CameraError(f"world_from_camera must be 4x4, got shape {m.shape}")
        return Camera(width, height, *vals, world_from_camera=m)

    @staticmethod
    def look_at(
        eye: np.ndarray,
        target: np.ndarray,
        width: int,
        height: int,
        fov_y_deg: float = 50.0,
        up: np.ndarray = np.array([0.0, 0.0, 1.0]),
    ) -> Camera:
        """A camera at ``eye`` looking at ``target`` with world ``up`` pointing up in the image."""
        eye = np.asarray(eye, dtype=np.float64)
        z = np.asarray(target, dtype=np.float64) - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, up)
        if np.linalg.norm(x) < 1e-8:  # looking straight along up: pick any right vector
            x = np.cross(z, np.array([0.0, 1.0, 0.0]))
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
        f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
        return Camera(width, height, f, f, width / 2, height / 2, m)


def frame_points(
    points: np.ndarray,
    width: int,
    height: int,
    azimuth_deg: float = -60.0,
    elevation_deg: float = 35.0,
    fov_y_deg: float = 45.0,
    margin: float = 1.15,
) -> Camera:
    """A camera looking at the centre of ``points`` from a direction that fits them all in view.

    Args:
        points: (N, 3) world points to frame.
        azimuth_deg: direction of the camera around z, from +x (degrees; -60 is front-left of +x).
        elevation_deg: height angle above the xy plane.
        margin: >1 leaves room around the bounding sphere.
    """
    points = np.asarray(points, dtype=np.float64)
    assert points.ndim == 2 and points.shape[1] == 3 and len(points) > 0, points.shape
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    fov = math.radians(fov_y_deg)
    fov_x = 2 * math.atan(math.tan(fov / 2) * width / height)
    dist = margin * radius / math.sin(min(fov, fov_x) / 2)
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = centre + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return Camera.look_at(eye, centre, width, height, fov_y_deg=fov_y_deg)


def validate_camera_fields(width: int, height: int, fx: float, fy: float, m: np.ndarray) -> None:
    """Raise CameraError unless sizes and focals are positive and ``m`` is a rigid transform."""
    if width <= 0 or height <= 0:
        raise CameraError(f"camera size must be positive, got {width}x{height}")
    if not (fx > 0 and fy > 0):
        raise CameraError(f"camera focal lengths must be positive, got fx={fx}, fy={fy}")
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise CameraError("world_from_camera must be a finite 4x4 matrix")
    r = m[:3, :3]
    if (
        not np.allclose(r.T @ r, np.eye(3), atol=_RIGID_TOL)
        or abs(np.linalg.det(r) - 1.0) > _RIGID_TOL
        or not np.allclose(m[3], [0, 0, 0, 1], atol=_RIGID_TOL)
    ):
        raise CameraError(
            "world_from_camera is not a rigid transform (its rotation must be orthonormal with "
            "det +1 and its last row [0, 0, 0, 1]); remove any scale or shear"
        )


def load_cameras(path: str | os.PathLike[str]) -> list[Camera]:
    """Load a camera JSON file holding one camera or a list of cameras."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CameraError(f"camera file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CameraError(f"{path} is not valid JSON: {e}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise CameraError(f"{path} holds an empty list of cameras")
    try:
        return [Camera.from_dict(d) for d in items]
    except CameraError as e:
        raise CameraError(f"{path}: {e}") from None


def save_cameras(path: str | os.PathLike[str], cameras: Camera | list[Camera]) -> None:
    """Write one camera (an object) or several (a list) as JSON, atomically."""
    data = cameras.to_dict() if isinstance(cameras, Camera) else [c.to_dict() for c in cameras]
    write_text_atomic(path, json.dumps(data, indent=2))
