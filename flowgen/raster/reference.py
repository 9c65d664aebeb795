"""Reference rasteriser: plain torch over explicit (pixel, Gaussian) pairs, autograd backward.

Obviously correct rather than fast; used by tests and the benchmark only. It defines the
compositing that the fast CPU rasteriser (`fast.py`) must reproduce, which is gsplat's
(`RasterizeToPixels3DGSFwd.cu`): per pixel, Gaussians in increasing depth order,

    alpha_i = min(ALPHA_MAX, opacity_i exp(-sigma_i)),  skipped if alpha_i < 1/255 or sigma_i < 0,
    T_i     = prod_{j < i, not skipped} (1 - alpha_j),
    stop before the first Gaussian whose T_i (1 - alpha_i) <= TRANSMITTANCE_MIN,
    colour  = sum_i alpha_i T_i c_i,   alpha = 1 - T_final.

Transmittance is kept in float64, as in the fast path, so both make identical stop
decisions. Pairs are either every pixel x every Gaussian (`pairs="all"`, the literal
definition) or only the pixels inside each Gaussian's screen box (`pairs="box"`, the same
result since alpha < 1/255 outside the box; a test checks it). Pairs are then grouped in
depth layers (each pixel's k-th Gaussian) and composited one layer at a time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from flowgen.raster.common import ALPHA_MAX, ALPHA_THRESHOLD, TRANSMITTANCE_MIN, depth_order


def box_pixel_ranges(
    means2d: Tensor, radii: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Inclusive pixel ranges [x0, x1] x [y0, y1] whose centres may lie inside the screen boxes.

    Pixel j has centre j + 0.5, inside the box when |j + 0.5 - mean| <= radius. Computed in
    float64 and rounded outwards; the fast path uses the identical rule.

    Args:
        means2d: (L, 2).
        radii: (L, 2) int.
        width: image width.
        height: image height.

    Returns:
        x0, x1, y0, y1, each (L,) int64, clipped to the image (x0 > x1 means empty).
    """
    m = means2d.detach().double()
    r = radii.double()
    lo = torch.floor(m - r - 0.5).long()
    hi = torch.ceil(m + r - 0.5).long()
    return (
        lo[:, 0].clamp(min=0),
        hi[:, 0].clamp(max=width - 1),
        lo[:, 1].clamp(min=0),
        hi[:, 1].clamp(max=height - 1),
    )


def enumerate_pairs(
    x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, width: int
) -> tuple[Tensor, Tensor]:
    """All (Gaussian, pixel) pairs of per-Gaussian pixel rectangles.

    Args:
        x0, x1, y0, y1: (L,) inclusive pixel ranges of each Gaussian.
        width: image width (pixel id = row * width + column).

    Returns:
        gauss (M,) index into the L Gaussians, in increasing order, and pixel (M,) ids.
    """
    w = (x1 - x0 + 1).clamp(min=0)
    h = (y1 - y0 + 1).clamp(min=0)
    counts = w * h
    gauss = torch.repeat_interleave(torch.arange(len(counts)), counts)
    local = torch.arange(len(gauss)) - (torch.cumsum(counts, 0) - counts)[gauss]
    px = x0[gauss] + local % w[gauss]
    py = y0[gauss] + local // w[gauss]
    return gauss, py * width + px


def sort_by_layer(
    rank: Tensor, pixel: Tensor, num_ranks: int, num_pixels: int
) -> tuple[Tensor, Tensor, list[int]]:
    """Sort pairs by (layer, pixel), where layer k holds each pixel's k-th nearest Gaussian.

    The pair attributes are packed into int64 sort keys (no gathers through permutations,
    which are memory-latency bound for millions of pairs).

    Args:
        rank: (M,) depth rank of each pair's Gaussian.
        pixel: (M,) pixel id of each pair.
        num_ranks: number of ranks L (rank < L).
        num_pixels: H * W.

    Returns:
        rank (M,), pixel (M,) sorted by (layer, pixel), and the number of pairs per layer.
    """
    by_pixel = torch.sort(pixel * num_ranks + rank).values  # depth order within a pixel
    pixel = by_pixel // num_ranks
    counts = torch.bincount(pixel, minlength=num_pixels)
    layer = torch.arange(len(pixel)) - (torch.cumsum(counts, 0) - counts)[pixel]
    by_layer = torch.sort((layer * num_pixels + pixel) * num_ranks + by_pixel % num_ranks).values
    layer_sizes = torch.bincount(layer).tolist()
    return by_layer % num_ranks, (by_layer // num_ranks) % num_pixels, layer_sizes


def composite_layers(
    alpha: Tensor, used: Tensor, pixel: Tensor, layer_sizes: list[int], num_pixels: int
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing, one depth layer of all pixels at a time.

    A literal transcription of gsplat's per-pixel loop, vectorised over the pixels of a layer.

    Args:
        alpha: (M,) clamped alpha of each pair, pairs sorted by (layer, pixel).
        used: (M,) bool, False where the pair is skipped (alpha < 1/255 or sigma < 0).
        pixel: (M,) pixel id of each pair; unique within a layer.
        layer_sizes: number of pairs in each layer, in order.
        num_pixels: H * W.

    Returns:
        weight (M,) = alpha T of each pair (0 where not composited), in alpha's dtype, and
        the final transmittance (num_pixels,) in float64.
    """
    t = torch.ones(num_pixels, dtype=torch.float64)
    done = torch.zeros(num_pixels, dtype=torch.bool)
    weights = []
    # split (not slicing in a loop) so autograd concatenates the layer gradients once
    for pix, a, ok in zip(*(x.split(layer_sizes) for x in (pixel, alpha, used)), strict=True):
        t_before = t[pix]
        t_after = t_before * (1 - a).double()
        live = ok & ~done[pix]
        stop = live & (t_after <= TRANSMITTANCE_MIN)  # gsplat: this one is excluded, pixel done
        take = live & ~stop
        weights.append(torch.where(take, (a.double() * t_before).to(alpha.dtype), 0.0))
        done = done.index_put((pix,), done[pix] | stop)
        t = t.index_put((pix,), torch.where(take, t_after, t_before))
    empty = alpha.new_zeros(0)
    return torch.cat(weights) if weights else empty, t


def rasterize_reference(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    depths: Tensor,
    radii: Tensor,
    width: int,
    height: int,
    pairs: Literal["box", "all"] = "box",
) -> tuple[Tensor, Tensor]:
    """Composite screen-space Gaussians front to back; differentiable by autograd.

    Args:
        means2d: (N, 2) pixel coordinates of centres.
        conics: (N, 3) inverse 2D covariances (a, b, c).
        opacities: (N,) in [0, 1].
        colors: (N, D) per-Gaussian features to composite.
        depths: (N,) sort keys (camera z); not differentiated.
        radii: (N, 2) int screen radii, zero for culled Gaussians.
        width: image width W.
        height: image height H.
        pairs: "box" (pixels inside each screen box) or "all" (every pixel).

    Returns:
        image (H, W, D) = sum_i w_i c_i and alpha (H, W) = 1 - T_final.
    """
    n, d = colors.shape
    assert means2d.shape == (n, 2) and conics.shape == (n, 3) and opacities.shape == (n,)
    assert depths.shape == (n,) and radii.shape == (n, 2)
    dtype, num_pixels = means2d.dtype, width * height
    order = depth_order(depths, radii)
    if pairs == "box":
        x0, x1, y0, y1 = box_pixel_ranges(means2d[order], radii[order], width, height)
    else:
        zeros = torch.zeros_like(order)
        x0, x1, y0, y1 = zeros, zeros + width - 1, zeros, zeros + height - 1
    rank, pixel = enumerate_pairs(x0, x1, y0, y1, width)  # in depth order
    rank, pixel, layer_sizes = sort_by_layer(rank, pixel, len(order), num_pixels)
    gauss = order[rank]

    # alpha of every pair, exactly as gsplat evaluates it (same float ops, same order)
    centres = torch.stack([pixel % width, pixel // width], dim=-1).to(dtype) + 0.5
    delta = means2d[gauss] - centres
    a, b, c = conics[gauss].unbind(-1)
    dx, dy = delta.unbind(-1)
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    alpha = torch.clamp(opacities[gauss] * torch.exp(-sigma), max=ALPHA_MAX)
    used = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
    weight, t_final = composite_layers(alpha, used, pixel, layer_sizes, num_pixels)

    image = torch.zeros(num_pixels, d, dtype=dtype)
    image = image.index_add(0, pixel, weight[:, None] * colors[gauss])
    alpha_image = (1 - t_final).to(dtype)
    return image.reshape(height, width, d), alpha_image.reshape(height, width)
