"""`render_frames`: T frames of Gaussians seen by one camera (or one camera per frame), on the
CPU, each frame's projection and compositing on a worker thread of its own.

A motion iteration renders every frame of a view (9 at the shipped preset's 32x32): per frame
the image is too small to split well over tiles (4 tiles of 16x16, very unequal), but frames
are independent, so here one task per frame runs the whole fast path - `fast_project`'s
projection, the depth sort, `tiling.bin_tiles`, `fast`'s compositing - forward, and its
backward likewise, as one autograd node for all the frames; each frame's work is one numba
call that holds no GIL (`_frame_forward`, `_frame_backward`: numpy's sort and casts in between
would serialise the threads on it). The kernels, their float32 and
float64 steps and so the images are `render(backend="fast")`'s, frame by frame; the gradients
are too, but for the projection's upstream gradient being kept in float64 instead of rounded to
float32 between the two kernels (tested). Each task writes only its own frame's outputs and
gradients, so a run is the same on any thread count.

numba caches the two frame kernels under this file only, with the kernels of `fast`,
`fast_project` and `tiling` compiled into them: after editing those, touch this file (or clear
flowgen/raster/__pycache__) so the cache is rebuilt.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from flowgen.raster.fast import _backward_tiles, _forward_tiles, bin_in_depth_order
from flowgen.raster.fast_project import _project_backward, _project_forward
from flowgen.raster.render import RenderOutput
from flowgen.raster.tiling import TILE_SIZE, for_tile_batches

__all__ = ["render_frames"]


def _numpy64(x: Tensor) -> np.ndarray:
    return x.detach().double().contiguous().numpy()


def _of_frame(camera: np.ndarray, frame: int) -> np.ndarray:
    """Frame ``frame``'s view matrix or intrinsics: one per frame (3 axes) or one for all."""
    return camera[frame] if camera.ndim == 3 else camera


@numba.njit(cache=True, nogil=True)
def _frame_forward(means, quats, scales, opac64, opacity, feats, view, K, width, height, near, far, eps2d, tile,
                   image, alpha):
    """One frame forward without the GIL: `fast_project`'s projection (float64), the depth
    sort and binning (`fast.bin_in_depth_order`), `fast`'s compositing into ``image`` (H, W,
    C + 1: the features, then depth) and ``alpha`` (H, W). Returns what its backward needs."""
    n = means.shape[0]
    means2d, conics = np.empty((n, 2)), np.empty((n, 3))
    depths, radii = np.empty(n), np.empty((n, 2), dtype=np.int32)
    _project_forward(means, quats, scales, opac64, view, K, width, height, near, far, eps2d, means2d, conics,
                     depths, radii)
    m2, co, depth = means2d.astype(feats.dtype), conics.astype(feats.dtype), depths.astype(feats.dtype)
    colors = np.empty((n, feats.shape[1] + 1), dtype=feats.dtype)
    colors[:, :-1] = feats
    colors[:, -1] = depth
    offsets, ids = bin_in_depth_order(m2, radii, depth, width, height)
    t_final = np.empty((height, width))
    last = np.empty((height, width), dtype=np.int64)
    tiles = np.arange(len(offsets) - 1)
    _forward_tiles(tiles, m2, co, opacity, colors, radii, offsets, ids, tile, image, alpha, t_final, last)
    return m2, co, colors, radii, offsets, ids, t_final, last


@numba.njit(cache=True, nogil=True)
def _frame_backward(means, quats, scales, opacity, view, K, width, height, eps2d, m2, co, colors, radii, offsets,
                    ids, t_final, last, v_image, v_alpha, tile, v_means, v_quats, v_scales, v_opac, v_feats):
    """One frame's backward without the GIL: `fast`'s compositing backward, then
    `fast_project`'s, the projection's upstream gradient kept in float64."""
    grads = np.zeros((means.shape[0], 6 + colors.shape[1]))
    tiles = np.arange(len(offsets) - 1)
    _backward_tiles(tiles, m2, co, opacity, colors, radii, offsets, ids, t_final, last, v_image, v_alpha, tile,
                    grads)
    v_opac[:] = grads[:, 5]
    v_feats[:, :] = grads[:, 6:-1]
    _project_backward(means, quats, scales, view, K, width, height, eps2d, radii,
                      np.ascontiguousarray(grads[:, 0:2]), np.ascontiguousarray(grads[:, 2:5]),
                      np.ascontiguousarray(grads[:, -1]), v_means, v_quats, v_scales)


class _RenderFrames(torch.autograd.Function):
    """Per frame `fast_project`'s and `fast`'s kernels forward, and their backward, one
    frame per task; per-frame (T, N, ·) inputs (shared ones expanded by the caller)."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, features, viewmat, K, width, height, near, far, eps2d):
        frames, dtype = means.shape[0], features.dtype
        f32 = np.float32 if dtype == torch.float32 else np.float64
        means64, quats64 = _numpy64(means), _numpy64(quats)
        scales64, opac64 = _numpy64(scales), _numpy64(opacities)
        opacity = opacities.detach().contiguous().numpy()  # (F, N)
        feats = features.detach().contiguous().numpy()
        view, intrinsics = _numpy64(viewmat), _numpy64(K)
        channels = feats.shape[2] + 1
        image = np.empty((frames, height, width, channels), dtype=f32)
        alpha = np.empty((frames, height, width), dtype=f32)
        saved: list = [None] * frames

        def task(f: int, _) -> None:
            saved[f] = _frame_forward(means64[f], quats64[f], scales64[f], opac64[f], opacity[f], feats[f],
                                      _of_frame(view, f), _of_frame(intrinsics, f), width, height, near, far, eps2d,
                                      TILE_SIZE, image[f], alpha[f])

        for_tile_batches(task, [np.array([f]) for f in range(frames)])
        ctx.save_for_backward(means, quats, scales, opacities)
        ctx.frames = saved
        ctx.camera = (view, intrinsics, width, height, eps2d)
        out = torch.from_numpy(image)
        return out[..., :-1], torch.from_numpy(alpha), out[..., -1]

    @staticmethod
    @once_differentiable
    def backward(ctx, v_color, v_alpha, v_depth):
        means, quats, scales, opacities = ctx.saved_tensors
        view, intrinsics, width, height, eps2d = ctx.camera
        frames, n = means.shape[:2]
        means64, quats64, scales64 = _numpy64(means), _numpy64(quats), _numpy64(scales)
        opacity = opacities.detach().contiguous().numpy()
        v_image = torch.cat((v_color, v_depth[..., None]), -1).contiguous().numpy()
        v_alpha_np = v_alpha.contiguous().numpy()
        v_means, v_quats = np.empty((frames, n, 3)), np.empty((frames, n, 4))
        v_scales, v_opac = np.empty((frames, n, 3)), np.empty((frames, n))
        v_feats = np.empty((frames, n, v_image.shape[-1] - 1))

        def task(f: int, _) -> None:
            _frame_backward(means64[f], quats64[f], scales64[f], opacity[f], _of_frame(view, f),
                            _of_frame(intrinsics, f), width, height, eps2d,
                            *ctx.frames[f], v_image[f], v_alpha_np[f], TILE_SIZE, v_means[f], v_quats[f],
                            v_scales[f], v_opac[f], v_feats[f])

        for_tile_batches(task, [np.array([f]) for f in range(frames)])
        dtype = v_color.dtype
        return (torch.from_numpy(v_means).to(dtype), torch.from_numpy(v_quats).to(dtype),
                torch.from_numpy(v_scales).to(dtype), torch.from_numpy(v_opac).to(dtype),
                torch.from_numpy(v_feats).to(dtype), None, None, None, None, None, None, None)


def render_frames(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, features: Tensor, viewmat: Tensor,
                  K: Tensor, width: int, height: int, near: float = 0.01, far: float = 1e10,
                  eps2d: float = 0.3) -> RenderOutput:
    """`render(backend="fast")` of T frames at once: a `RenderOutput` whose fields carry a
    leading frame axis, (T, H, W, C) colour, (T, H, W) alpha and depth. Differentiable w.r.t.
    means, quats, scales, opacities and features (not the camera).

    Args:
        means: (T, N, 3), quats: (T, N, 4) wxyz, features: (T, N, C): per frame.
        scales: (T, N, 3) or (N, 3), opacities: (T, N) or (N,): per frame or shared.
        viewmat, K: the camera, (4, 4) and (3, 3) as `render`'s, or one per frame, (T, 4, 4)
            and (T, 3, 3) (several views of the same Gaussians in one call).
        width, height, near, far, eps2d: the image and culling, as `render`.
    """
    frames, n = means.shape[:2]
    assert means.shape == (frames, n, 3) and quats.shape == (frames, n, 4), (means.shape, quats.shape)
    assert features.ndim == 3 and features.shape[:2] == (frames, n), features.shape
    assert scales.shape in ((n, 3), (frames, n, 3)) and opacities.shape in ((n,), (frames, n)), (
        scales.shape, opacities.shape)
    assert means.device.type == "cpu", f"render_frames runs on CPU tensors, got {means.device}"
    assert not (viewmat.requires_grad or K.requires_grad), "the camera is not differentiated here"
    assert viewmat.shape in ((4, 4), (frames, 4, 4)) and K.shape in ((3, 3), (frames, 3, 3)), (viewmat.shape, K.shape)
    dtypes = {t.dtype for t in (means, quats, scales, opacities, features, viewmat, K)}
    assert len(dtypes) == 1 and means.dtype in (torch.float32, torch.float64), f"one float dtype, got {dtypes}"
    scales, opacities = scales.expand(frames, n, 3), opacities.expand(frames, n)
    color, alpha, depth = _RenderFrames.apply(means, quats, scales, opacities, features, viewmat, K, width, height,
                                              near, far, eps2d)
    return RenderOutput(color=color, alpha=alpha, depth=depth)
