"""The distillation with earlier code paths swapped back in, for `benchmarks/run.py`'s references
(each a context manager: only flows built inside the block run the old way)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator


@contextlib.contextmanager
def before_issue_22() -> Iterator[None]:
    """The distillation as it ran before issue #22: the VAE checkpointed, each view's
    condition encoded alone (a batch of one), ARAP rotations by SVD. It swaps the ``cpu``
    entry of `flowgen.config.PRESETS` and `flowgen.arap.procrustes_rotations` for the
    duration, so only flows built inside the block run the old way."""
    import flowgen.arap
    import flowgen.config
    import flowgen.procrustes

    cpu = flowgen.config.PRESETS["cpu"]

    def old_cpu(prior="video"):
        config = cpu(prior)
        if config.wan is None:
            return config
        wan = dataclasses.replace(config.wan, vae_checkpointing=True, encode_together=False)
        return dataclasses.replace(config, wan=wan)

    rotations = flowgen.arap.procrustes_rotations
    flowgen.config.PRESETS["cpu"], flowgen.arap.procrustes_rotations = old_cpu, flowgen.procrustes.svd_rotations
    try:
        yield
    finally:
        flowgen.config.PRESETS["cpu"], flowgen.arap.procrustes_rotations = cpu, rotations


@contextlib.contextmanager
def before_session_15() -> Iterator[None]:
    """The distillation with session 15's changes undone: the skinning blend by torch's sparse
    product, ARAP's energy by torch ops, a view's frames rendered one by one (Horn's rotations
    stay the new ones: they are inside numba). Swapped for the duration of the block."""
    import flowgen.losses
    import flowgen.objective
    import flowgen.skinning
    from flowgen.arap import arap_energy_torch
    from flowgen.blend import blend_rows_sparse
    from flowgen.splats import render_splats

    def frame_by_frame(frames, camera, background=None):
        return [render_splats(s, camera, background) for s in frames]

    swaps = [(flowgen.skinning, "blend_rows", blend_rows_sparse), (flowgen.losses, "arap_energy", arap_energy_torch),
             (flowgen.objective, "render_splats_frames", frame_by_frame)]
    kept = [getattr(module, name) for module, name, _ in swaps]
    for module, name, value in swaps:
        setattr(module, name, value)
    try:
        yield
    finally:
        for (module, name, _), value in zip(swaps, kept):
            setattr(module, name, value)


@contextlib.contextmanager
def before_session_16() -> Iterator[None]:
    """The distillation with session 16's changes undone: the VAE encoder chunk by chunk, the
    skinning weights by torch ops (the blend backward stays the new one). Swapped for the block."""
    import flowgen.skinning
    from flowgen.priors.wan import encode
    from flowgen.skin_weights import skinning_weights_torch

    kept = encode.WHOLE_MAX, flowgen.skinning.skinning_weights
    encode.WHOLE_MAX, flowgen.skinning.skinning_weights = 0, skinning_weights_torch
    try:
        yield
    finally:
        encode.WHOLE_MAX, flowgen.skinning.skinning_weights = kept
