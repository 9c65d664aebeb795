"""Forward kinematics from a URDF, vectorised over configurations.

yourdfpy parses the URDF (meshes are not loaded: kinematics needs none); `Kinematics` walks
the joint tree once and composes each link's pose for a whole batch of configurations with
numpy. `reference_link_pose` asks yourdfpy itself, one configuration at a time, and is what
the tests hold the fast path to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from chord_robot.errors import SafetyError
from chord_robot.robots import resolve_urdf
from hardware.robots import RobotSpec


@dataclass(frozen=True)
class _Joint:
    name: str
    kind: str  # "revolute", "continuous", "prismatic", "fixed", ...
    parent: str
    child: str
    origin: np.ndarray  # (4, 4) parent link frame -> joint frame at q = 0
    axis: np.ndarray  # (3,) unit axis in the joint frame
    column: int  # index into the configuration, -1 when held at 0


class Kinematics:
    """Forward kinematics of the arm joints of a URDF.

    Joints not in ``joint_names`` (fingers) are held at zero. Link poses are in the frame of
    ``base_link``.
    """

    def __init__(self, urdf_path: Path, joint_names: tuple[str, ...], base_link: str) -> None:
        import yourdfpy

        if not urdf_path.is_file():
            raise SafetyError(
                f"refused, nothing moved: the robot URDF {urdf_path} does not exist; the workspace "
                "and table cannot be checked without it (give the plan a robot_urdf file path)"
            )
        urdf = yourdfpy.URDF.load(
            str(urdf_path), load_meshes=False, load_collision_meshes=False, build_scene_graph=False
        )
        self.joint_names = tuple(joint_names)
        self.base_link = base_link
        missing = [n for n in joint_names if n not in urdf.joint_map]
        if missing:
            raise SafetyError(
                f"refused, nothing moved: the URDF {urdf_path.name} has no joints {missing}"
            )
        self._by_child: dict[str, _Joint] = {}
        for j in urdf.joint_map.values():
            origin = np.eye(4) if j.origin is None else np.asarray(j.origin, dtype=np.float64)
            axis = np.array([1.0, 0, 0]) if j.axis is None else np.asarray(j.axis, dtype=np.float64)
            if not np.linalg.norm(axis) > 0:  # fixed joints may declare a zero axis
                axis = np.array([1.0, 0, 0])
            column = self.joint_names.index(j.name) if j.name in self.joint_names else -1
            self._by_child[j.child] = _Joint(
                j.name, j.type, j.parent, j.child, origin, axis / np.linalg.norm(axis), column
            )
        self.links = frozenset(urdf.link_map)
        self.path = urdf_path

    def chain(self, link: str) -> list[_Joint]:
        """Joints from ``base_link`` down to ``link``, base first."""
        if link not in self.links:
            raise SafetyError(f"refused, nothing moved: the URDF has no link {link!r}")
        out = []
        while link != self.base_link:
            if link not in self._by_child:
                raise SafetyError(
                    f"refused, nothing moved: link {out[-1].child if out else link!r} is not "
                    f"below the base link {self.base_link!r} in the URDF"
                )
            joint = self._by_child[link]
            out.append(joint)
            link = joint.parent
        return out[::-1]

    def link_poses(self, q: np.ndarray, links: list[str]) -> dict[str, np.ndarray]:
        """Poses of ``links`` in the base frame.

        Args:
            q: (S, dof) configurations, columns in ``joint_names`` order.
            links: link names.
        Returns:
            link -> (S, 4, 4) base-frame poses.
        """
        q = np.asarray(q, dtype=np.float64)
        assert q.ndim == 2 and q.shape[1] == len(self.joint_names), q.shape
        s = q.shape[0]
        cache: dict[str, np.ndarray] = {self.base_link: np.broadcast_to(np.eye(4), (s, 4, 4))}
        out = {}
        for link in links:
            chain = self.chain(link)
            # start from the deepest link already computed on this chain
            start = 0
            for k in range(len(chain) - 1, -1, -1):
                if chain[k].child in cache:
                    start = k + 1
                    break
            pose = cache[chain[start - 1].child] if start > 0 else cache[self.base_link]
            for joint in chain[start:]:
                pose = pose @ joint.origin @ _motion(joint, q)
                cache[joint.child] = pose
            out[link] = np.array(pose)
        return out

    def points(self, q: np.ndarray, points: list[tuple[str, np.ndarray]]) -> np.ndarray:
        """Base-frame positions of points attached to links.

        Args:
            q: (S, dof) configurations.
            points: (link, (3,) offset in the link frame) pairs, P of them.
        Returns:
            (S, N, 3).
        """
        poses = self.link_poses(q, sorted({link for link, _ in points}))
        cols = [
            poses[link][:, :3, :3] @ np.asarray(off, float) + poses[link][:, :3, 3]
            for link, off in points
        ]
        return np.stack(cols, axis=1)

    def reference_link_pose(self, q: np.ndarray, link: str) -> np.ndarray:
        """(4, 4) pose of ``link`` for one (dof,) configuration, computed by yourdfpy's own scene
        graph (slow; the reference the tests compare `link_poses` to)."""
        import yourdfpy

        urdf = yourdfpy.URDF.load(str(self.path), load_meshes=False, build_scene_graph=True)
        urdf.update_cfg({n: float(v) for n, v in zip(self.joint_names, q)})
        return np.asarray(urdf.get_transform(link, self.base_link))


def _motion(joint: _Joint, q: np.ndarray) -> np.ndarray:
    """(S, 4, 4) joint motion for configurations ``q`` (S, dof) (identity for fixed joints)."""
    s = q.shape[0]
    m = np.broadcast_to(np.eye(4), (s, 4, 4)).copy()
    if joint.column < 0 or joint.kind in ("fixed", "floating", "planar"):
        return m
    v = q[:, joint.column]
    if joint.kind == "prismatic":
        m[:, :3, 3] = v[:, None] * joint.axis
        return m
    # Rodrigues: R = I + sin(v) K + (1 - cos(v)) K^2
    x, y, z = joint.axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    m[:, :3, :3] = (
        np.eye(3) + np.sin(v)[:, None, None] * k + (1 - np.cos(v))[:, None, None] * (k @ k)
    )
    return m


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, joint_names: tuple[str, ...], base_link: str) -> Kinematics:
    return Kinematics(Path(path), joint_names, base_link)


def kinematics_for(spec: RobotSpec, urdf: str | None = None) -> Kinematics:
    """The (cached) `Kinematics` of ``spec``, from ``urdf`` (a plan's robot_urdf) or its own."""
    identifier = urdf or spec.urdf
    if identifier is None:
        raise SafetyError(
            f"refused, nothing moved: no URDF is known for {spec.name!r}; plan with a "
            "robot_urdf file path so the workspace can be checked"
        )
    path = resolve_urdf(identifier)
    mtime = path.stat().st_mtime if path.is_file() else -1.0
    return _cached(str(path), mtime, spec.joint_names, spec.base_link)
