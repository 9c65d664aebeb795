"""Screen tiles for the fast CPU rasteriser: binning Gaussians into tiles, and spreading
tiles over worker threads.

Tiles are spread over `torch.get_num_threads()` Python threads running `nogil` numba
kernels rather than numba's `prange`: its OpenMP layer fights torch's OpenMP pool, its
`workqueue` layer is not thread-safe, and parallel functions compile slower
(docs/flowgen-notes.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

TILE_SIZE = 16
"""Tile edge in pixels: the unit of parallel work and of early termination."""


@numba.njit(cache=True, inline="always")
def pixel_box(mx: float, my: float, rx: int, ry: int) -> tuple[int, int, int, int]:
    """Inclusive pixel range [x0, x1] x [y0, y1] of a screen box, unclipped.

    Same rule, in float64, as `reference.box_pixel_ranges`.
    """
    x0 = math.floor(np.float64(mx) - rx - 0.5)
    x1 = math.ceil(np.float64(mx) + rx - 0.5)
    y0 = math.floor(np.float64(my) - ry - 0.5)
    y1 = math.ceil(np.float64(my) + ry - 0.5)
    return x0, x1, y0, y1


@numba.njit(cache=True, nogil=True)
def bin_tiles(
    means2d: np.ndarray, radii: np.ndarray, order: np.ndarray, width: int, height: int, tile: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile lists of Gaussians in depth order (CSR).

    Args:
        means2d: (N, 2).
        radii: (N, 2) int32.
        order: (L,) int64 visible Gaussians, front to back.
        width, height: image size.
        tile: tile edge in pixels.

    Returns:
        offsets (n_tiles + 1,) int64 and ids (n_isects,) int32: tile t lists
        ids[offsets[t]:offsets[t + 1]].
    """
    tiles_x = (width + tile - 1) // tile
    tiles_y = (height + tile - 1) // tile
    num = order.shape[0]
    ranges = np.empty((num, 4), dtype=np.int64)
    counts = np.zeros(tiles_x * tiles_y + 1, dtype=np.int64)
    for i in range(num):
        g = order[i]
        x0, x1, y0, y1 = pixel_box(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1])
        tx0, tx1 = max(x0, 0) // tile, min(x1, width - 1) // tile
        ty0, ty1 = max(y0, 0) // tile, min(y1, height - 1) // tile
        ranges[i, 0], ranges[i, 1], ranges[i, 2], ranges[i, 3] = tx0, tx1, ty0, ty1
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                counts[ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    ids = np.empty(offsets[-1], dtype=np.int32)
    for i in range(num):
        for ty in range(ranges[i, 2], ranges[i, 3] + 1):
            for tx in range(ranges[i, 0], ranges[i, 1] + 1):
                t = ty * tiles_x + tx
                ids[fill[t]] = order[i]
                fill[t] += 1
    return offsets, ids


_POOLS: dict[int, ThreadPoolExecutor] = {}
"""Worker pools by size, created on first use."""


def _tile_batches(offsets: np.ndarray, workers: int) -> list[np.ndarray]:
    """Tiles split into batches for `workers` threads, costliest tiles first.

    Tiles differ a lot in cost (an object edge vs empty sky), so there are several batches
    per worker, taken dynamically, each a stride through the tiles sorted by list length.
    """
    by_cost = np.argsort(-np.diff(offsets), kind="stable")
    batches = min(len(by_cost), 4 * workers)
    return [by_cost[i::batches] for i in range(batches)]


def num_workers() -> int:
    """Worker threads: torch's intra-op setting, so torch.set_num_threads applies here too."""
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def tile_batches(offsets: np.ndarray) -> list[np.ndarray]:
    """The tiles of a binning (`bin_tiles` offsets) in batches for `num_workers()` threads:
    one batch of all tiles for one worker."""
    workers = num_workers()
    if workers == 1 or len(offsets) <= 2:
        return [np.arange(len(offsets) - 1, dtype=np.int64)]
    return _tile_batches(offsets, workers)


def for_tile_batches(task: Callable[[int, np.ndarray], None], batches: list[np.ndarray]) -> None:
    """task(index, tiles) for every batch of `tile_batches`, on `num_workers()` threads.

    Batches are taken by whichever thread is free, so a task must write only to its tiles'
    pixels or to buffers of its own batch ``index`` (sums over batches in index order are
    then the same on every run).
    """
    workers = num_workers()
    if len(batches) == 1 or workers == 1:
        for index, batch in enumerate(batches):
            task(index, batch)
        return
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="flowgen-raster")
    pool = _POOLS[workers]
    for future in [pool.submit(task, i, batch) for i, batch in enumerate(batches)]:
        future.result()
