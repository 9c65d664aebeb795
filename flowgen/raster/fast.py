"""Fast CPU rasteriser: tile-binned numba kernels with a hand-written backward.

Same compositing as `reference.py` (gsplat's), organised as gsplat organises it on the GPU:

1. *Binning* — each visible Gaussian is listed in every 16x16 tile its screen box touches;
   each tile's list is in increasing depth (one global stable sort, no per-tile sort).
2. *Forward* — per tile, the Gaussians front to back, each touching only the pixels of its
   box inside the tile and skipping rows and pixels already opaque; the tile stops when all
   its pixels are. Per pixel it keeps the final transmittance and the list index of the
   last Gaussian composited (as gsplat).
3. *Backward* — per tile, Gaussians back to front from the last contributor; transmittance
   in front of each recovered by dividing by (1 - alpha) in float64, and the colour behind
   it kept as its dot product with the pixel's colour gradient (all dL/dalpha needs). Each
   worker thread sums gradients into its own (N, 6 + D) array; these are added at the end.

Binning and the spreading of tiles over threads live in `tiling.py`.

Kernels are compiled for float32 and float64 (numba specialises on dtype; float64 serves
`gradcheck`). Everything that decides whether a pair is composited is computed in the input
dtype with the reference's operations, and transmittance in float64 as there, so both make
the same decisions. Compiled code is cached on disk (`cache=True`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from flowgen.raster.common import ALPHA_MAX, ALPHA_THRESHOLD, TRANSMITTANCE_MIN
from flowgen.raster.tiling import TILE_SIZE, bin_tiles, for_tile_batches, pixel_box, tile_batches


@numba.njit(cache=True, inline="always")
def _sigma_cutoff(opacity: float) -> float:
    """A sigma beyond which opacity exp(-sigma) < ALPHA_THRESHOLD for certain.

    Lets the kernels skip exp() in the corners of the screen box; the margin (1e-4 in sigma,
    i.e. 1e-4 relative in alpha) dwarfs exp's rounding, so no decision changes.
    """
    return math.log(max(np.float64(opacity), 1e-30) / ALPHA_THRESHOLD) + 1e-4


@numba.njit(cache=True)
def _forward_tile(
    t: int,
    means2d: np.ndarray,
    conics: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    radii: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    tile: int,
    image: np.ndarray,
    alpha_out: np.ndarray,
    t_out: np.ndarray,
    last_out: np.ndarray,
) -> None:
    """Front-to-back compositing of tile t, written into the output images.

    Args:
        t: tile index (row-major over the tile grid).
        means2d (N, 2), conics (N, 3), opacities (N,), colors (N, D): one float dtype.
        radii: (N, 2) int32.
        offsets, ids: tile lists from `_bin_tiles`.
        tile: tile edge in pixels.
        image (H, W, D), alpha_out (H, W): outputs in the input dtype; t_out (H, W) float64
            final transmittance; last_out (H, W) int64 list index of each pixel's last
            composited Gaussian (offsets[t] - 1 if none).
    """
    f = colors.dtype.type
    half, one, amax, athr = f(0.5), f(1.0), f(ALPHA_MAX), f(ALPHA_THRESHOLD)
    height, width, depth = image.shape
    tiles_x = (width + tile - 1) // tile
    ox, oy = (t % tiles_x) * tile, (t // tiles_x) * tile
    ex, ey = min(ox + tile, width), min(oy + tile, height)
    tw = ex - ox
    npix = tw * (ey - oy)
    trans = np.ones(npix, dtype=np.float64)
    done = np.zeros(npix, dtype=np.bool_)
    last = np.full(npix, offsets[t] - 1, dtype=np.int64)
    acc = np.zeros((npix, depth), dtype=colors.dtype)
    row_live = np.full(ey - oy, tw, dtype=np.int64)
    live = npix
    for k in range(offsets[t], offsets[t + 1]):
        g = ids[k]
        mx, my, op = means2d[g, 0], means2d[g, 1], opacities[g]
        a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
        x0, x1, y0, y1 = pixel_box(mx, my, radii[g, 0], radii[g, 1])
        cutoff = _sigma_cutoff(op)
        for py in range(max(y0, oy), min(y1 + 1, ey)):
            if row_live[py - oy] == 0:
                continue
            dy = my - f(py + 0.5)
            for px in range(max(x0, ox), min(x1 + 1, ex)):
                p = (py - oy) * tw + (px - ox)
                if done[p]:
                    continue
                dx = mx - f(px + 0.5)
                sigma = half * (a * dx * dx + c * dy * dy) + b * dx * dy
                if sigma > cutoff:
                    continue
                alpha = min(op * math.exp(-sigma), amax)
                if sigma < 0 or alpha < athr:
                    continue
                t_next = trans[p] * np.float64(one - alpha)
                if t_next <= TRANSMITTANCE_MIN:  # gsplat: excluded, and the pixel is done
                    done[p] = True
                    row_live[py - oy] -= 1
                    live -= 1
                    continue
                w = f(np.float64(alpha) * trans[p])
                for ch in range(depth):
                    acc[p, ch] += w * colors[g, ch]
                trans[p] = t_next
                last[p] = k
        if live == 0:
            break
    for p in range(npix):
        py, px = oy + p // tw, ox + p % tw
        image[py, px, :] = acc[p, :]
        alpha_out[py, px] = f(1.0 - trans[p])
        t_out[py, px] = trans[p]
        last_out[py, px] = last[p]


@numba.njit(cache=True, nogil=True)
def _forward_tiles(
    tiles: np.ndarray,
    means2d: np.ndarray,
    conics: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    radii: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    tile: int,
    image: np.ndarray,
    alpha_out: np.ndarray,
    t_out: np.ndarray,
    last_out: np.ndarray,
) -> None:
    """`_forward_tile` for each of tiles (int64 array), without holding the GIL."""
    for t in tiles:
        _forward_tile(
            t,
            means2d,
            conics,
            opacities,
            colors,
            radii,
            offsets,
            ids,
            tile,
            image,
            alpha_out,
            t_out,
            last_out,
        )


@numba.njit(cache=True)
def _backward_tile(
    t: int,
    means2d: np.ndarray,
    conics: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    radii: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    t_final: np.ndarray,
    last: np.ndarray,
    v_image: np.ndarray,
    v_alpha_image: np.ndarray,
    tile: int,
    grads: np.ndarray,
) -> None:
    """Gradients of tile t's (tile, Gaussian) pairs, back to front.

    Args:
        t, means2d, conics, opacities, colors, radii, offsets, ids, tile: as `_forward_tile`.
        t_final: (H, W) float64 and last: (H, W) int64, saved by the forward.
        v_image: (H, W, D) and v_alpha_image: (H, W) upstream gradients.
        grads: (N, 6 + D) float64, this worker's own accumulator: row g receives
            d/d(mean x, mean y, conic a, b, c, opacity, colors) of Gaussian g.
    """
    f = colors.dtype.type
    half, one, amax, athr = f(0.5), f(1.0), f(ALPHA_MAX), f(ALPHA_THRESHOLD)
    height, width, depth = v_image.shape
    tiles_x = (width + tile - 1) // tile
    ox, oy = (t % tiles_x) * tile, (t // tiles_x) * tile
    ex, ey = min(ox + tile, width), min(oy + tile, height)
    tw = ex - ox
    npix = tw * (ey - oy)
    trans = np.empty(npix, dtype=np.float64)
    t_end = np.empty(npix, dtype=np.float64)
    stop = np.empty(npix, dtype=np.int64)
    row_stop = np.full(ey - oy, offsets[t] - 1, dtype=np.int64)
    v_col = np.empty((npix, depth), dtype=np.float64)
    v_a = np.empty(npix, dtype=np.float64)
    behind = np.zeros(npix, dtype=np.float64)  # (colour behind) . v_colour, per pixel
    v_rgb = np.empty(depth, dtype=np.float64)
    for p in range(npix):
        py, px = oy + p // tw, ox + p % tw
        trans[p] = t_end[p] = t_final[py, px]
        stop[p] = last[py, px]
        row_stop[p // tw] = max(row_stop[p // tw], stop[p])
        v_a[p] = v_alpha_image[py, px]
        for ch in range(depth):
            v_col[p, ch] = v_image[py, px, ch]
    for k in range(row_stop.max(), offsets[t] - 1, -1):
        g = ids[k]
        mx, my, op = means2d[g, 0], means2d[g, 1], opacities[g]
        a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
        x0, x1, y0, y1 = pixel_box(mx, my, radii[g, 0], radii[g, 1])
        cutoff = _sigma_cutoff(op)
        v_mx = v_my = v_a_ = v_b = v_c = v_op = 0.0
        v_rgb[:] = 0.0
        touched = False
        for py in range(max(y0, oy), min(y1 + 1, ey)):
            if k > row_stop[py - oy]:
                continue
            dy = my - f(py + 0.5)
            for px in range(max(x0, ox), min(x1 + 1, ex)):
                p = (py - oy) * tw + (px - ox)
                if k > stop[p]:
                    continue
                dx = mx - f(px + 0.5)
                sigma = half * (a * dx * dx + c * dy * dy) + b * dx * dy
                if sigma > cutoff:
                    continue
                vis = math.exp(-sigma)
                alpha = min(op * vis, amax)
                if sigma < 0 or alpha < athr:
                    continue
                touched = True
                ra = 1.0 / np.float64(one - alpha)
                trans[p] *= ra  # transmittance in front of this Gaussian
                fac = np.float64(alpha) * trans[p]
                colour_dot = 0.0  # c_g . dL/dcolour(p)
                for ch in range(depth):
                    v_rgb[ch] += fac * v_col[p, ch]
                    colour_dot += colors[g, ch] * v_col[p, ch]
                # dL/dalpha = (c T - behind / (1 - alpha)) . v_col + T_final / (1 - alpha) v_a
                v_alpha = colour_dot * trans[p] - behind[p] * ra + t_end[p] * ra * v_a[p]
                behind[p] += colour_dot * fac
                if op * vis <= amax:  # a clamped alpha has no gradient
                    v_sigma = -np.float64(op * vis) * v_alpha
                    v_mx += v_sigma * (a * dx + b * dy)
                    v_my += v_sigma * (b * dx + c * dy)
                    v_a_ += 0.5 * v_sigma * dx * dx
                    v_b += v_sigma * dx * dy
                    v_c += 0.5 * v_sigma * dy * dy
                    v_op += vis * v_alpha
        if touched:
            grads[g, 0] += v_mx
            grads[g, 1] += v_my
            grads[g, 2] += v_a_
            grads[g, 3] += v_b
            grads[g, 4] += v_c
            grads[g, 5] += v_op
            grads[g, 6:] += v_rgb


@numba.njit(cache=True, nogil=True)
def _backward_tiles(
    tiles: np.ndarray,
    means2d: np.ndarray,
    conics: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    radii: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    t_final: np.ndarray,
    last: np.ndarray,
    v_image: np.ndarray,
    v_alpha_image: np.ndarray,
    tile: int,
    grads: np.ndarray,
) -> None:
    """`_backward_tile` for each of tiles (int64 array), without holding the GIL."""
    for t in tiles:
        _backward_tile(
            t,
            means2d,
            conics,
            opacities,
            colors,
            radii,
            offsets,
            ids,
            t_final,
            last,
            v_image,
            v_alpha_image,
            tile,
            grads,
        )


@numba.njit(cache=True, nogil=True)
def bin_in_depth_order(means2d: np.ndarray, radii: np.ndarray, depths: np.ndarray, width: int,
                       height: int) -> tuple[np.ndarray, np.ndarray]:
    """`bin_tiles` of the visible Gaussians (both radii > 0) front to back: the same stable
    order as `common.depth_order`, compiled (no GIL, no torch thread pool involved)."""
    visible = np.flatnonzero((radii[:, 0] > 0) & (radii[:, 1] > 0))
    order = visible[np.argsort(depths[visible], kind="mergesort")]  # mergesort: numba's stable sort
    return bin_tiles(means2d, radii, order, width, height, TILE_SIZE)


class _RasterizeFast(torch.autograd.Function):
    """Tile-binned compositing with a hand-written backward (see module docstring)."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, depths, radii, width, height):
        arrays = [x.detach().contiguous().numpy() for x in (means2d, conics, opacities, colors)]
        radii_np = radii.detach().to(torch.int32).contiguous().numpy()
        offsets, ids = bin_in_depth_order(arrays[0], radii_np, depths.detach().numpy(), width, height)
        image = np.empty((height, width, colors.shape[1]), dtype=arrays[3].dtype)
        alpha = np.empty((height, width), dtype=arrays[3].dtype)
        t_final = np.empty((height, width), dtype=np.float64)
        last = np.empty((height, width), dtype=np.int64)
        for_tile_batches(
            lambda _, tiles: _forward_tiles(
                tiles, *arrays, radii_np, offsets, ids, TILE_SIZE, image, alpha, t_final, last
            ),
            tile_batches(offsets),
        )
        ctx.save_for_backward(means2d, conics, opacities, colors)  # checks in-place edits
        ctx.binning = (radii_np, offsets, ids, t_final, last)
        return torch.from_numpy(image), torch.from_numpy(alpha)

    @staticmethod
    @once_differentiable
    def backward(ctx, v_image, v_alpha):
        arrays = [x.detach().contiguous().numpy() for x in ctx.saved_tensors]
        radii_np, offsets, ids, t_final, last = ctx.binning
        v_image_np, v_alpha_np = v_image.contiguous().numpy(), v_alpha.contiguous().numpy()
        # one gradient accumulator per batch of tiles, summed in batch order: no write races,
        # and the same sum on every run whichever thread took which batch
        batches = tile_batches(offsets)
        accumulators = np.zeros((len(batches), arrays[0].shape[0], 6 + arrays[3].shape[1]))

        def task(index: int, tiles: np.ndarray) -> None:
            _backward_tiles(
                tiles,
                *arrays,
                radii_np,
                offsets,
                ids,
                t_final,
                last,
                v_image_np,
                v_alpha_np,
                TILE_SIZE,
                accumulators[index],
            )

        for_tile_batches(task, batches)
        per_gauss = torch.from_numpy(accumulators.sum(0)).to(v_image.dtype)
        v_means2d, v_conics, v_opac, v_colors = per_gauss.split([2, 3, 1, arrays[3].shape[1]], 1)
        return v_means2d, v_conics, v_opac[:, 0], v_colors, None, None, None, None


def rasterize_fast(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    depths: Tensor,
    radii: Tensor,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Composite screen-space Gaussians front to back (fast CPU path).

    Same contract and result as `reference.rasterize_reference`; differentiable w.r.t.
    means2d, conics, opacities and colors.

    Args:
        means2d: (N, 2) pixel coordinates of centres.
        conics: (N, 3) inverse 2D covariances (a, b, c).
        opacities: (N,) in [0, 1].
        colors: (N, D) per-Gaussian features to composite.
        depths: (N,) sort keys (camera z); not differentiated.
        radii: (N, 2) int screen radii, zero for culled Gaussians.
        width: image width W.
        height: image height H.

    Returns:
        image (H, W, D) and alpha (H, W), in the dtype of the inputs (float32 or float64).
    """
    n = colors.shape[0]
    assert means2d.shape == (n, 2) and conics.shape == (n, 3) and opacities.shape == (n,)
    assert depths.shape == (n,) and radii.shape == (n, 2)
    assert means2d.device.type == "cpu", "the fast rasteriser runs on CPU tensors"
    dtype = colors.dtype
    assert dtype in (torch.float32, torch.float64) and all(
        x.dtype == dtype for x in (means2d, conics, opacities)
    ), "means2d, conics, opacities and colors must share one float dtype"
    return _RasterizeFast.apply(means2d, conics, opacities, colors, depths, radii, width, height)
