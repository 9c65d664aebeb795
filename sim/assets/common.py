"""What every asset family shares: the cache directory, spec-keyed atomic writes, OBJ text,
the URDF XML pieces (inertials, geometries, materials) and a few rigid transforms.

Files are named by a hash of the asset's spec (`spec_key`) and written once (`write_once`:
temp file + rename, skipped when the name exists), so parallel workers can share a cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import trimesh

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "chord-robot-assets"


def cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The asset cache directory (created): ``root`` or ``$TMPDIR/chord-robot-assets``."""
    path = Path(root) if root is not None else DEFAULT_CACHE
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_once(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically unless it already exists (same name, same content)."""
    if path.exists():
        return path
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.replace(tmp, path)
    return path


def spec_key(kind: str, spec: object) -> str:
    """``kind`` and a hash of the spec's fields: the stem of every file of that asset."""
    text = kind + repr(sorted(asdict(spec).items()))  # type: ignore[call-overload]
    return f"{kind}_{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def obj_text(mesh: trimesh.Trimesh) -> str:
    """The OBJ text of ``mesh`` (vertices and faces only)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
    return "\n".join(lines) + "\n"


def rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """(4, 4) rotation about a unit ``axis`` through the origin."""
    m = np.eye(4)
    m[:3, :3] = trimesh.transformations.rotation_matrix(angle, axis)[:3, :3]
    return m


def trans(x: float, y: float, z: float) -> np.ndarray:
    """(4, 4) translation."""
    m = np.eye(4)
    m[:3, 3] = [x, y, z]
    return m


def cyl_mesh(r: float, h: float, transform: np.ndarray) -> trimesh.Trimesh:
    """A closed cylinder of radius ``r`` and height ``h`` along z, placed by ``transform``."""
    return trimesh.creation.cylinder(radius=r, height=h, sections=24, transform=transform)


# --------------------------------------------------------------------------- URDF writing


def inertial(
    mass: float, inertia: np.ndarray, xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> str:
    """A URDF ``<inertial>`` element: ``mass`` with the (3, 3) ``inertia`` at ``xyz``."""
    i = np.asarray(inertia, dtype=np.float64)
    return (
        f'<inertial><origin xyz="{xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f}"/><mass value="{mass:.6f}"/>'
        f'<inertia ixx="{i[0, 0]:.8f}" ixy="{i[0, 1]:.8f}" ixz="{i[0, 2]:.8f}" '
        f'iyy="{i[1, 1]:.8f}" iyz="{i[1, 2]:.8f}" izz="{i[2, 2]:.8f}"/></inertial>'
    )


def box_inertia(mass: float, size: tuple[float, float, float]) -> np.ndarray:
    """(3, 3) inertia of a solid box about its centre."""
    x, y, z = size
    return mass / 12 * np.diag([y * y + z * z, x * x + z * z, x * x + y * y])


def cyl_inertia(mass: float, r: float, h: float, axis: int = 2) -> np.ndarray:
    """(3, 3) inertia of a solid cylinder about its centre, its length along ``axis``."""
    d = np.full(3, mass * (3 * r * r + h * h) / 12)
    d[axis] = mass * r * r / 2
    return np.diag(d)


def geom(kind: str, geometry: str, xyz=(0.0, 0.0, 0.0), rpy=(0.0, 0.0, 0.0), rgba=None) -> str:
    """A ``<visual>`` or ``<collision>`` element (``kind``) of ``geometry`` at (xyz, rpy), with
    a named colour material when ``rgba`` is given."""
    mat = ""
    if rgba:
        name = "c" + "_".join(f"{round(c * 255)}" for c in rgba)
        mat = f'<material name="{name}"><color rgba="{" ".join(f"{c:.4f}" for c in rgba)}"/></material>'
    o = f'<origin xyz="{xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f}" rpy="{rpy[0]:.6f} {rpy[1]:.6f} {rpy[2]:.6f}"/>'
    return f"<{kind}>{o}<geometry>{geometry}</geometry>{mat}</{kind}>"


def box(size) -> str:
    """A ``<box>`` geometry."""
    return f'<box size="{size[0]:.6f} {size[1]:.6f} {size[2]:.6f}"/>'


def cylinder(r: float, h: float) -> str:
    """A ``<cylinder>`` geometry (length along z)."""
    return f'<cylinder radius="{r:.6f}" length="{h:.6f}"/>'


def mesh_file(path: Path) -> str:
    """A ``<mesh>`` geometry of the file at ``path``."""
    return f'<mesh filename="{path}" scale="1 1 1"/>'


def urdf(name: str, body: str) -> str:
    """The URDF document of robot ``name`` with ``body`` (links and joints)."""
    return f'<?xml version="1.0"?>\n<robot name="{name}">\n{body}\n</robot>\n'
