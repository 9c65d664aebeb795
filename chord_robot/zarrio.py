"""Shared helpers for the zarr v3 stores (ObjectFlow, Plan): open, validate, write atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from chord_robot import __version__
from chord_robot.atomic import atomic_path
from chord_robot.errors import SchemaError


def open_store(path: str | os.PathLike[str], schema: str, version: int) -> zarr.Group:
    """Open a zarr v3 group for reading and check its schema and version attributes."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path} does not exist")
    try:
        group = zarr.open_group(str(path), mode="r", zarr_format=3)
    except Exception as e:  # zarr raises several types for a non-store directory
        raise SchemaError(f"{path} is not a zarr v3 group ({type(e).__name__}: {e})") from None
    found = group.attrs.get("schema")
    if found != schema:
        raise SchemaError(f"{path} has schema {found!r}, expected {schema!r}")
    if group.attrs.get("version") != version:
        raise SchemaError(
            f"{path} has {schema} version {group.attrs.get('version')!r}; this chord-robot "
            f"reads version {version}"
        )
    return group


def read_array(group: zarr.Group, key: str, ndim: int, dtype: Any = np.float32) -> np.ndarray:
    """Read ``group[key]`` as a numpy array of ``ndim`` dimensions; SchemaError if absent."""
    try:
        arr = np.asarray(group[key][...])
    except KeyError:
        raise SchemaError(f"store is missing the array {key!r}") from None
    if arr.ndim != ndim:
        raise SchemaError(f"{key} must have {ndim} dimensions, got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def write_store(
    path: str | os.PathLike[str], attrs: dict[str, Any], fill: Callable[[zarr.Group], None]
) -> None:
    """Create a zarr v3 group atomically: ``fill(group)`` writes its arrays into a temporary."""
    attrs = {**attrs, "software_version": __version__}
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        group.attrs.update(attrs)
        fill(group)


def put(group: zarr.Group, key: str, data: np.ndarray) -> None:
    """Write one array (a zero-size array gets a chunk shape of 1 where zarr needs it)."""
    data = np.ascontiguousarray(data)
    chunks = tuple(max(1, s) for s in data.shape) if data.ndim else ()
    group.create_array(key, shape=data.shape, dtype=data.dtype, chunks=chunks or None)[...] = data
