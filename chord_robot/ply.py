"""A small PLY reader and writer (ASCII and binary), numpy only.

Scans are untrusted input: every malformation becomes a `ScanError` with one line saying
what is wrong, never a numpy or struct traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chord_robot.atomic import atomic_path
from chord_robot.errors import ScanError

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}
_MAX_HEADER = 1 << 16


@dataclass(frozen=True)
class PlyData:
    """The vertex properties and (optional) triangle faces of a PLY file.

    Attributes:
        vertex: property name -> (N,) array.
        faces: (F, 3) int64 triangle indices (polygons fan-triangulated), or None.
    """

    vertex: dict[str, np.ndarray]
    faces: np.ndarray | None


@dataclass(frozen=True)
class _Element:
    name: str
    count: int
    props: list[tuple[str, str, str | None]]  # (name, dtype, list count dtype or None)


def read_ply(path: str | os.PathLike[str]) -> PlyData:
    """Read a PLY file's vertex and face elements."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ScanError(f"cannot read {path}: {e.strerror}") from None
    if not raw:
        raise ScanError(f"{path} is empty; expected a PLY file")
    if not raw.startswith(b"ply"):
        raise ScanError(f"{path} is not a PLY file (it does not start with 'ply'); export the scan as PLY")
    end = raw.find(b"end_header", 0, _MAX_HEADER)
    if end < 0:
        raise ScanError(f"{path}: PLY header has no end_header line (the file is truncated or not PLY)")
    nl = raw.find(b"\n", end)
    body_start = len(raw) if nl < 0 else nl + 1
    try:
        header = raw[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise ScanError(f"{path}: PLY header is not ASCII text") from None
    fmt, elements = _parse_header(path, header)
    body = raw[body_start:]
    if fmt == "ascii":
        data = _read_ascii(path, body, elements)
    else:
        data = _read_binary(path, body, elements, "<" if fmt == "binary_little_endian" else ">")
    if "vertex" not in data:
        raise ScanError(f"{path}: PLY file has no vertex element")
    vertex = data["vertex"]
    for axis in "xyz":
        if axis not in vertex:
            raise ScanError(f"{path}: PLY vertices have no '{axis}' property")
    faces = data.get("face")
    if faces is not None and len(faces) and (faces.min() < 0 or faces.max() >= len(vertex["x"])):
        raise ScanError(f"{path}: PLY faces index vertices that do not exist")
    return PlyData(vertex, faces if faces is not None and len(faces) else None)


def _parse_header(path: Path, lines: list[str]) -> tuple[str, list[_Element]]:
    fmt = None
    elements: list[_Element] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        try:
            if parts[0] == "format":
                fmt = parts[1]
                if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
                    raise ScanError(f"{path}: unknown PLY format {fmt!r}")
            elif parts[0] == "element":
                count = int(parts[2])
                if count < 0:
                    raise ValueError
                elements.append(_Element(parts[1], count, []))
            elif parts[0] == "property":
                if not elements:
                    raise ScanError(f"{path}: PLY property before any element")
                if parts[1] == "list":
                    elements[-1].props.append((parts[4], _TYPES[parts[3]], _TYPES[parts[2]]))
                else:
                    elements[-1].props.append((parts[2], _TYPES[parts[1]], None))
        except (IndexError, ValueError, KeyError):
            raise ScanError(f"{path}: malformed PLY header line {line!r}") from None
    if fmt is None:
        raise ScanError(f"{path}: PLY header has no format line")
    return fmt, elements


def _read_binary(path: Path, body: bytes, elements: list[_Element], endian: str) -> dict:
    out: dict = {}
    offset = 0
    for el in elements:
        has_list = any(p[2] for p in el.props)
        if not has_list:
            dtype = np.dtype([(n, endian + t) for n, t, _ in el.props])
            need = dtype.itemsize * el.count
            if offset + need > len(body):
                raise ScanError(
                    f"{path}: PLY file is truncated: element '{el.name}' needs {need} bytes, "
                    f"{len(body) - offset} remain; re-export the scan"
                )
            arr = np.frombuffer(body, dtype, el.count, offset)
            offset += need
            if el.name == "vertex":
                out["vertex"] = {n: np.array(arr[n]) for n, _, _ in el.props}
            continue
        if el.name != "face" or len(el.props) != 1:
            raise ScanError(f"{path}: PLY element '{el.name}' with list properties is not supported")
        _, item_t, count_t = el.props[0]
        out["face"], offset = _read_binary_faces(path, body, offset, el.count, endian + count_t, endian + item_t)
    return out


def _read_binary_faces(path: Path, body: bytes, offset: int, count: int, count_t: str, item_t: str):
    ct, it = np.dtype(count_t), np.dtype(item_t)
    tri = np.dtype([("n", ct), ("v", it, (3,))])
    if count == 0:
        return np.zeros((0, 3), np.int64), offset
    if offset + tri.itemsize * count <= len(body):
        arr = np.frombuffer(body, tri, count, offset)
        if np.all(arr["n"] == 3):
            return arr["v"].astype(np.int64), offset + tri.itemsize * count
    faces = []
    for _ in range(count):  # general polygons: walk the list lengths
        if offset + ct.itemsize > len(body):
            raise ScanError(f"{path}: PLY file is truncated inside its faces; re-export the scan")
        n = int(np.frombuffer(body, ct, 1, offset)[0])
        offset += ct.itemsize
        if offset + n * it.itemsize > len(body):
            raise ScanError(f"{path}: PLY file is truncated inside its faces; re-export the scan")
        poly = np.frombuffer(body, it, n, offset).astype(np.int64)
        offset += n * it.itemsize
        faces.extend([poly[0], poly[i], poly[i + 1]] for i in range(1, n - 1))
    return np.asarray(faces, np.int64).reshape(-1, 3), offset


def _read_ascii(path: Path, body: bytes, elements: list[_Element]) -> dict:
    lines = body.decode("ascii", errors="replace").splitlines()
    out: dict = {}
    pos = 0
    for el in elements:
        chunk = lines[pos : pos + el.count]
        pos += el.count
        if len(chunk) < el.count:
            raise ScanError(f"{path}: PLY file is truncated: element '{el.name}' has {len(chunk)} of {el.count} lines")
        if el.name == "vertex":
            try:
                table = np.array([[float(v) for v in ln.split()[: len(el.props)]] for ln in chunk])
            except ValueError:
                raise ScanError(f"{path}: PLY vertex data is not numeric") from None
            if table.ndim != 2 or table.shape[1] != len(el.props):
                raise ScanError(f"{path}: PLY vertex lines do not have {len(el.props)} values")
            out["vertex"] = {n: table[:, i].astype(t) for i, (n, t, _) in enumerate(el.props)}
        elif el.name == "face":
            faces = []
            for ln in chunk:
                try:
                    vals = [int(v) for v in ln.split()]
                except ValueError:
                    raise ScanError(f"{path}: PLY face data is not integer") from None
                n, poly = vals[0], vals[1 : 1 + vals[0]]
                faces.extend([poly[0], poly[i], poly[i + 1]] for i in range(1, n - 1))
            out["face"] = np.asarray(faces, np.int64).reshape(-1, 3)
    return out


def write_ply(
    path: str | os.PathLike[str],
    vertex: dict[str, np.ndarray],
    faces: np.ndarray | None = None,
    binary: bool = True,
) -> None:
    """Write a PLY file atomically.

    Args:
        vertex: property name -> (N,) array; 'x', 'y', 'z' first by convention.
        faces: (F, 3) triangle indices, or None.
        binary: binary little-endian if True, else ASCII.
    """
    names = list(vertex)
    cols = [np.asarray(vertex[n]) for n in names]
    n = len(cols[0])
    assert all(len(c) == n for c in cols), "all vertex properties need the same length"
    kinds = [c.dtype.str.lstrip("<>|=") for c in cols]
    kinds = [k if k in _NAMES else "f4" for k in kinds]
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", f"element vertex {n}"]
    head += [f"property {_NAMES[k]} {name}" for k, name in zip(kinds, names)]
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(head) + "\n").encode("ascii"))
        if binary:
            rec = np.empty(n, np.dtype([(nm, "<" + k) for nm, k in zip(names, kinds)]))
            for nm, c in zip(names, cols):
                rec[nm] = c
            f.write(rec.tobytes())
            if faces is not None:
                fr = np.empty(len(faces), np.dtype([("n", "u1"), ("v", "<i4", (3,))]))
                fr["n"], fr["v"] = 3, faces
                f.write(fr.tobytes())
        else:
            for i in range(n):
                f.write((" ".join(_fmt(c[i]) for c in cols) + "\n").encode("ascii"))
            for tri in faces if faces is not None else []:
                f.write(f"3 {tri[0]} {tri[1]} {tri[2]}\n".encode("ascii"))


def _fmt(v) -> str:
    return repr(float(v)) if np.issubdtype(type(v), np.floating) else str(int(v))
