"""The scan-to-robot registration (poses and transforms: `chord_robot.geometry`).

Frames (DESIGN.md §3): a plan's `ee_poses`, `grasp_pose` and `robot_base` are in the *world*
frame, which is the frame of the scan the plan was made from. `robot_base` is the pose of the
robot base in that frame, the base the planner solved the joints for. Joints move the real
arm the same way wherever the scan was taken, so every physical check (limits, workspace,
table) is done in the *robot base* frame from the joints by forward kinematics.

The registration ``robot_from_scan`` (4, 4) maps scan/world coordinates to the real robot's
base frame: p_robot = robot_from_scan @ p_scan. It comes from a calibration (the execute config's
``scan_to_robot``: a file or ``x,y,z,qw,qx,qy,qz``). Applied to a plan, it must carry the plan's `robot_base`
onto the identity: that is the statement "the planner's robot is where the real robot is".
Without a registration the plan's own base is taken as the truth
(robot_from_scan = inverse(robot_base)), which is what the simulator does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from chord_robot.errors import ConfigError, InputError, quote
from chord_robot.geometry import pose_to_matrix


def check_rigid(m: np.ndarray, what: str) -> np.ndarray:
    """``m`` as a (4, 4) float array; InputError unless it is a rigid transform."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError(f"{what} must be a finite 4x4 matrix, got shape {m.shape}")
    r = m[:3, :3]
    if (
        np.abs(r.T @ r - np.eye(3)).max() > 1e-4
        or abs(np.linalg.det(r) - 1) > 1e-4
        or np.abs(m[3] - [0, 0, 0, 1]).max() > 1e-9
    ):
        raise InputError(
            f"{what} is not a rigid transform (rotation not orthonormal or last row not 0 0 0 1)"
        )
    return m


def parse_transform(text: str | os.PathLike[str]) -> np.ndarray:
    """A registration (the execute config's ``scan_to_robot``) -> (4, 4) robot_from_scan.

    Accepted:
        ``"x,y,z,qw,qx,qy,qz"``: translation (m) and a wxyz quaternion;
        a JSON file holding a 4x4 list, a 7-list as above, or an object with key
        ``"robot_from_scan"`` (4x4) or ``"pose"`` (7-list);
        a text file of 16 numbers (a row-major 4x4) or 7 numbers.
    """
    s = str(text).strip()
    values = _numbers(s)
    if values is not None:
        if len(values) != 7:
            raise ConfigError(
                "scan_to_robot",
                f"{{field}} {quote(s)}: give x,y,z,qw,qx,qy,qz (7 numbers) or a file, "
                f"got {len(values)} numbers",
            )
        return _from_list(values, s)
    path = Path(os.path.expanduser(s))
    if not path.is_file():
        raise ConfigError(
            "scan_to_robot", f"{{field}} {quote(s)} is neither x,y,z,qw,qx,qy,qz nor an existing file"
        )
    body = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, dict):
            if "robot_from_scan" in data:
                data = data["robot_from_scan"]
            elif "pose" in data:
                data = data["pose"]
            else:
                raise InputError(
                    f"{path}: expected a key 'robot_from_scan' (4x4) or 'pose' (x,y,z,qw,qx,qy,qz)"
                )
        return _from_list(data, str(path))
    numbers = _numbers(body.replace("\n", ",").replace(" ", ","))
    if numbers is None:
        raise InputError(f"{path}: expected 16 numbers (a 4x4 matrix) or 7 (x,y,z,qw,qx,qy,qz)")
    return _from_list(
        numbers if len(numbers) == 7 else np.reshape(numbers, (-1, 4)).tolist(), str(path)
    )


def _numbers(s: str) -> list[float] | None:
    parts = [p for p in s.replace(";", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def _from_list(data, what: str) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float64)
    if arr.shape == (7,):
        q = arr[3:]
        if not np.linalg.norm(q) > 1e-9:
            raise InputError(f"{what}: the quaternion qw,qx,qy,qz is zero")
        return check_rigid(pose_to_matrix(np.concatenate([q, arr[:3]])), what)
    if arr.shape == (4, 4):
        return check_rigid(arr, what)
    raise InputError(f"{what}: expected a 4x4 matrix or x,y,z,qw,qx,qy,qz, got shape {arr.shape}")
