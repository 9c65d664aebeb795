"""The configuration of a flow generation run, and its presets (DESIGN.md §4, supp. §A.1).

One frozen dataclass, a docstring under each field. Presets are plain functions returning a
config: `paper` (the paper's numbers), `fast` (a GPU-friendly cut) and `cpu` (minutes on a
laptop CPU). The regulariser weights depend on the prior: the paper's (temporal 9.6 -> 1.6,
ARAP 3000 -> 300) are tuned against SDS gradients; the video prior's photometric loss has
another scale and gets its own, measured on the hinged-box recovery test.

Iterations of the motion stage are counted from 0; the appearance stage (frame 0, colours
and light only) runs before it and is not counted in the schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from flowgen.control import ControlConfig
from flowgen.mesh_fit import MeshFitConfig
from flowgen.priors.cameras import CameraSampling
from flowgen.priors.wan.config import PRESETS as WAN_PRESETS
from flowgen.priors.wan.config import Variant, WanConfig

__all__ = [
    "DEFORMATION_STORES",
    "PRESETS",
    "PRIORS",
    "RIGID_PARTS_ATTACH",
    "RIGID_PARTS_ATTACH_SMOOTH",
    "RIGID_PARTS_WEIGHT",
    "Decay",
    "FlowConfig",
    "Prior",
    "RegWeights",
    "StoreKind",
    "cpu",
    "fast",
    "paper",
    "preset",
    "free_object",
    "rigid_parts",
    "sds_cpu_weights",
    "wan_settings",
]


@dataclass(frozen=True)
class Decay:
    """A value going from ``start`` (first motion iteration) to ``end`` (last one)."""

    start: float
    """Value at motion iteration 0."""
    end: float
    """Value at the last motion iteration."""


@dataclass(frozen=True)
class RegWeights:
    """Loss weights of the regularisers, which depend on the prior's scale."""

    temporal: Decay
    """Rendered 3D-flow loss (mean squared flow per pixel, m^2), decayed linearly."""
    arap: Decay
    """ARAP on the near-surface set (mean squared edge residual, m^2), decayed linearly."""
    motion: float
    """Minimal-motion prior: robust (Welsch) penalty on the Gaussians' displacement from rest."""
    motion_scale: float
    """Displacement (m) at which the minimal-motion prior pulls hardest; it fades beyond."""
    attach: float
    """Parts of one object that touch at rest stay in contact (linear in the gap's growth, m)."""
    attach_smooth: float = 0.0
    """Below this change of the contact distance (m) the contact term is quadratic (smooth L1),
    above it linear; 0: linear throughout."""
    still: float = 0.0
    """Rendered displacement since frame 0 where the video shows no change (m^2; video prior)."""
    motion_per_part: bool = False
    """The minimal-motion prior on each part's mean displacement instead of each Gaussian's
    (`losses.minimal_motion`; set with ``rigid``)."""
    motion_unsupported: float = 1.0
    """With ``motion_per_part``: the minimal-motion factor of parts that do not rest on a static
    object (a lid, a lamp's head: they may move; what stands on the table holds)."""
    rigid: float = 0.0
    """Each part's deviation from a rigid motion (`losses.part_rigidity`, m^2): for scenes of
    rigid parts (articulated objects), where a weak prior otherwise bends a thin part (a lid)
    like a sheet; 0 (off) unless `rigid_parts` sets it."""
    overlap: float = 0.0
    """How far the parts of one object pass through each other (`losses.part_overlap`, m^2):
    rigid parts cannot (a lamp's head turned into its own arm, a lid closed through its base).
    Off (0) in every preset: at 30000 with the shipped prior it takes the two lamp heads that
    had folded into their arms out of them, but the robot trials pass no more
    (docs/flowgen-notes.md, session 26)."""
    turn: float = 0.0
    """How far each moving object turns from its rest orientation as a whole (`losses.turn`,
    m^2): for an object carried across the table by a weak prior, whose blurred image-space
    residual (`WanConfig.sds_space`) pins where the object goes but hardly which way it points.
    It pulls towards no turn, not the right one. 0 (off) in every preset of this module; 30000
    in the shipped pick model's (`chord_robot.app.flowconfig.SHIPPED_SETTINGS`); wrong wherever
    a part should turn or an object bend (a lid, a lamp's head, a cloth)."""
    sink: float = 0.0
    """How far moving Gaussians sink into the static scene from above (`losses.sink`, m^2): for
    a carried object, which a prior may hide in the table where it lies. 0 (off) in every preset:
    on a trained pick prior's four failing seeds, 1e5 executed one more (the two flows that sank
    the banana 19-24 mm still sank it 12-13 mm), 1e6 one more of three (one that sank it now
    carried it to the plate; docs/shipped-prior.md, session 34)."""
    acceleration: float = 0.0
    """Second differences of the Gaussians' trajectories, ``mu^(t+1) - 2 mu^t + mu^(t-1)``
    (mean squared, m^2), over the frames rendered together. Needed with a video model whose VAE
    compresses time (Wan: 4 frames per latent frame): the SDS gradient reaches the frames of one
    latent frame only through their combination, so frame-by-frame it zig-zags (measured in
    docs/trained-prior.md); the first-order temporal loss only slows such motion down."""


def sds_weights() -> RegWeights:
    """The paper's weights for the rectified-flow SDS prior (supp. §A.1)."""
    return RegWeights(temporal=Decay(9.6, 1.6), arap=Decay(3000.0, 300.0), motion=0.0, motion_scale=0.005,
                      attach=0.0)


def sds_cpu_weights() -> RegWeights:
    """Weights for a small trained Wan prior at 32 px (the cpu preset; docs/trained-prior.md):
    the video prior's ARAP, temporal and contact terms, and a robust minimal-motion prior 3000x
    the video prior's with its peak at 1 cm, which holds the parts the prior does not move (a
    laptop's base) to within a millimetre while a lid travelling several centimetres escapes
    it. Meant with ``WanConfig.grad_scale`` 0.003: the SDS gradient on the deformations is
    ~1000x the regularisers' at 32 px (measured), and unscaled it tears the object. The
    acceleration term keeps the frames of one VAE latent frame from zig-zagging (the SDS
    gradient only constrains their combination)."""
    return RegWeights(temporal=Decay(100.0, 20.0), arap=Decay(30_000.0, 3000.0), motion=3.0, motion_scale=0.01,
                      attach=2.0, acceleration=3000.0)


RIGID_PARTS_WEIGHT = 30_000.0
"""`RegWeights.rigid` when the objects are made of rigid parts (`rigid_parts`)."""
RIGID_PARTS_UNSUPPORTED = 0.1
"""`RegWeights.motion_unsupported` for objects made of rigid parts."""
RIGID_PARTS_ATTACH_SMOOTH = 0.005
"""`RegWeights.attach_smooth` for objects made of rigid parts: a joint's contact pairs move by
a few millimetres as it turns, and the linear term's constant-size gradient then outweighed the
prior's on the parts' rotations (measured: 60-150 against 2-5 on a lamp)."""
RIGID_PARTS_ATTACH = 2_000.0
"""`RegWeights.attach` (at least) when the objects are made of rigid parts: with each part
rigid, a weak prior moves the lid as a whole off its hinge unless the contact term holds it
(measured in docs/trained-prior.md)."""


def rigid_parts(config: FlowConfig) -> FlowConfig:
    """``config`` for objects made of rigid parts (articulated: a laptop, a lamp): each part's
    deviation from a rigid motion is penalised (`losses.part_rigidity`) and touching parts are
    held together harder, and the minimal-motion prior acts on each part as a whole (a rigid lid
    is not held back by its points near the hinge), a tenth as hard on parts that do not rest on
    a static object (the lid) as on those that do (the base on the table), the contact term is
    smooth below a joint's few millimetres of play; and each part that
    does not rest on a static object gets a rigid motion of its own about its joint
    (``part_motion``, `flowgen.model`), so a prior's push on the whole lid turns it instead of
    being spread over its control points. Not for deformable objects (cloth would be held flat)."""
    w = config.weights
    return replace(config, part_motion=True,
                   weights=replace(w, rigid=RIGID_PARTS_WEIGHT, attach=max(w.attach, RIGID_PARTS_ATTACH),
                                   attach_smooth=RIGID_PARTS_ATTACH_SMOOTH, motion_per_part=True,
                                   motion_unsupported=RIGID_PARTS_UNSUPPORTED))


FREE_PART_TRANSLATION = Decay(1e-2, 1e-4)
"""`FlowConfig.lr_part_translation` of a carried object (`free_object`): it travels tens of
centimetres, a joint's part a few millimetres."""


def free_object(config: FlowConfig, rigid: bool) -> FlowConfig:
    """``config`` for one free-moving object without joints: an object carried across the table
    (``rigid``: one rigid motion per frame of its own about its centroid, even though it rests
    on the table, and its deviation from a rigid motion penalised as for `rigid_parts`) or a
    cloth (no rigidity, no part motion: it bends). Undoes `rigid_parts`' joints and per-part
    minimal motion, which would hold an object that rests on the table where it is. A carried
    object has no minimal-motion prior at all (the weight is the run's: with no object named,
    every movable one loses it): with it, a trained pick prior's flows left the banana within
    10 mm on 5 of 8 seeds (read as `losses.minimal_motion`'s pull, which peaks at ``motion_scale``,
    1 cm in the cpu preset); without it 6 of 8 execute at seeds 100-107 and 6 of 8 at 300-307
    (session 34, docs/shipped-prior.md). A cloth keeps it (without it, the exact prior's fold
    moved the wrong corner on the one seed tried: docs/comparison/README.md, session 29)."""
    w = config.weights
    return replace(config, part_motion=rigid, free_parts=rigid,
                   lr_part_translation=FREE_PART_TRANSLATION if rigid else config.lr_part_translation,
                   weights=replace(w, rigid=RIGID_PARTS_WEIGHT if rigid else 0.0, overlap=w.overlap if rigid else 0.0,
                                   motion=0.0 if rigid else w.motion, motion_per_part=False,
                                   motion_unsupported=1.0, attach_smooth=0.0))


def video_weights() -> RegWeights:
    """Weights for the video prior's photometric loss, measured on the hinged-box recovery test
    (tests/flowgen/test_recovery.py): ARAP 10x the paper's (a lid that may bend follows the
    texture instead of its hinge: final-frame error 13 -> 3 mm), the temporal loss and the
    still-pixel term hold the base (without the temporal loss it drifted 30 mm along the
    viewing ray), a weak robust minimal-motion prior, and the contact term keeping the lid on
    its hinge."""
    return RegWeights(temporal=Decay(100.0, 20.0), arap=Decay(30_000.0, 3000.0), motion=1e-3, motion_scale=0.005,
                      attach=2.0, still=1e4)


Prior = Literal["video", "wan"]
"""What guides the motion (`FlowConfig.prior`)."""
PRIORS: tuple[Prior, ...] = get_args(Prior)
"""The priors, in the order messages name them."""
StoreKind = Literal["fenwick", "per-frame"]
"""How deformations over time are parameterised (`FlowConfig.deformation_store`)."""
DEFORMATION_STORES: tuple[StoreKind, ...] = get_args(StoreKind)
"""Parameterisations of the deformations over time (`FlowConfig.deformation_store`)."""


@dataclass(frozen=True)
class FlowConfig:
    """Everything a flow generation run needs besides its inputs."""

    prior: Prior = "video"
    """Which prior guides the motion: "video" (given videos) or "wan" (Wan 2.2 SDS)."""
    num_frames: int = 41
    """T, frames of the flow including the rest frame 0 (paper: 41)."""
    iterations: int = 2000
    """Motion iterations (paper: 2000)."""
    appearance_iterations: int = 0
    """Iterations fitting colours and light to frame 0 before any motion (video prior)."""
    max_side: int = 832
    """Long side of the rendered images in pixels (paper: 832x464)."""
    render_size: tuple[int, int] | None = None
    """(width, height) of the SDS renders; None: ``max_side`` wide at the paper's 832:464
    aspect, rounded to the model's multiple (`flowgen.priors.wan.ModelShape.fit_size`)."""
    num_gaussians: int = 100_000
    """Gaussians per moving object (meshes are sampled; points and 3DGS are capped)."""
    num_static_gaussians: int = 30_000
    """Gaussians per static object (rendered only when no background image is known)."""
    controls: ControlConfig = field(default_factory=ControlConfig)
    """Control points and the ARAP point set (coarse and fine levels)."""
    mesh_fit: MeshFitConfig = field(default_factory=MeshFitConfig)
    """Gaussians of mesh objects fitted to multi-view renders of the mesh (`flowgen.mesh_fit`)."""
    skin_neighbours: int = 8
    """Control points blended per point (the k nearest of its part)."""
    arap_neighbours: int = 10
    """Neighbours per point in the ARAP energy (paper: 10)."""
    views_per_iteration: int = 4
    """Cameras rendered per iteration (paper: batch 4)."""
    frames_per_view: int = 1
    """Frames rendered per camera per iteration (the video prior may take several)."""
    fine_start: float = 0.5
    """Fraction of the motion iterations after which the fine control level is optimised."""
    lr_deform: Decay = Decay(6e-3, 6e-5)
    """Learning rate of the Fenwick-tree deformations, log-linear (paper)."""
    lr_part: Decay = Decay(0.1, 1e-3)
    """Learning rate of the parts' rotations (``part_motion``; quaternion nodes), log-linear:
    with 2e-2 or 5e-2 a lamp's head lowered only 16-26 degrees (docs/trained-prior.md)."""
    lr_part_translation: Decay = Decay(2e-3, 2e-5)
    """Learning rate of the parts' translations (``part_motion``, m), log-linear: a part turns
    about its joint, and the contact term holds it there."""
    lr_control_scale: Decay = Decay(6e-3, 6e-5)
    """Learning rate of the control points' log-scales, log-linear (paper)."""
    lr_control_rotation: Decay = Decay(3e-3, 3e-5)
    """Learning rate of the control points' covariance rotations, log-linear (paper)."""
    per_axis_control_scales: bool = True
    """Each control point's covariance has three scales (initialised equal) turned by its
    learned rotation, ``Sigma_k = R_k diag(s_k^2) R_k^T`` (paper); False: one isotropic scale,
    which leaves the rotation without gradient (the setting before issue #19)."""
    lr_color: float = 2e-2
    """Learning rate of the Gaussians' colours (albedo) in the appearance stage."""
    lr_gaussian_scale: float = 5e-3
    """Learning rate of the Gaussians' log-scales in the appearance stage (3DGS: 5e-3)."""
    lr_opacity: float = 5e-2
    """Learning rate of the Gaussians' opacity logits in the appearance stage (3DGS: 5e-2)."""
    lr_color_motion: float = 0.0
    """Learning rate, in the motion stage, of the colours of the Gaussians frame 0 does not show
    (a lid's underside): they start at the scan's colours, which may not match the video, and
    stay pulled towards them by ``albedo_prior``. Colours fitted on frame 0 stay fixed."""
    lr_light: float = 2e-2
    """Learning rate of the global light (direction, ambient, diffuse) in the appearance stage."""
    lr_light_motion: float = 0.0
    """Learning rate of the light during the motion stage (0 keeps it)."""
    albedo_prior: float = 0.05
    """Weight pulling the albedo towards the scan's colours (mean squared difference)."""
    shading: bool = True
    """Colour = albedo x (ambient + diffuse max(0, n.l)) with normals turned by the skinning."""
    weights: RegWeights = field(default_factory=video_weights)
    """Regulariser weights (prior-dependent, see the module docstring)."""
    photometric_ssim: float = 0.2
    """Share of D-SSIM (brightness-tolerant) in the photometric loss, the rest L1 (3DGS)."""
    silhouette: float = 1.0
    """Weight of the alpha-vs-mask loss where a background image is known."""
    split_iteration: int | None = 100
    """Motion iteration of the split re-initialisation (paper: 100); None disables it."""
    split_fraction: float = 0.75
    """Frames after round(split_fraction * (T - 1)) are reset at the split (paper: 30 of 40)."""
    progressive: float = 0.0
    """Fraction of the motion iterations over which frames are unlocked one by one (0: all at once)."""
    lowres_fraction: float = 0.0
    """Fraction of the motion iterations rendered at ``lowres_scale`` (coarse-to-fine pyramid)."""
    lowres_scale: float = 0.5
    """Image scale of the first ``lowres_fraction`` of the iterations."""
    checkpoint_every: int = 100
    """Iterations between checkpoints (rollback points, and files a run can resume from)."""
    explode_factor: float = 20.0
    """A loss above this multiple of the recent median counts as exploding (rolled back)."""
    max_rollbacks: int = 5
    """Rollbacks allowed before the run gives up with an error."""
    seed: int = 0
    """Seed of the Gaussians' sampling and the frame and camera draws."""
    deformation_store: StoreKind = "fenwick"
    """How the control points' per-frame deformations are parameterised: "fenwick" (the paper:
    a Fenwick tree, frame t = product of O(log t) nodes) or "per-frame" (the paper's ablation:
    independent deformations per frame, `flowgen.fenwick.PerFrameStore`)."""
    part_motion: bool = False
    """Each part of a moving object (mesh component) also moves by one rigid motion per frame,
    turning about where it touches other parts (`flowgen.model`; outside the paper: for objects
    made of rigid parts, set by `rigid_parts`)."""
    free_parts: bool = False
    """With ``part_motion``: parts resting on a static object get a rigid motion too (about
    their centroid when they touch no other part): an object carried off the table
    (`free_object`). Otherwise the minimal-motion prior holds them by their control points."""
    wan: WanConfig | None = None
    """The Wan SDS prior's settings (prior "wan" only; its ``num_views`` is
    ``views_per_iteration``)."""

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if self.iterations < 1 or self.views_per_iteration < 1 or self.frames_per_view < 1:
            raise ValueError("iterations, views_per_iteration and frames_per_view must be >= 1")
        if self.deformation_store not in DEFORMATION_STORES:
            raise ValueError(f"unknown deformation store {self.deformation_store!r}; one of "
                             f"{', '.join(DEFORMATION_STORES)}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be 'video' or 'wan', got {self.prior!r}")
        if self.render_size is not None and min(self.render_size) < 1:
            raise ValueError(f"render_size must be positive, got {self.render_size}")
        if self.prior == "wan":
            if self.wan is None or self.wan.num_views != self.views_per_iteration:
                raise ValueError("the wan prior needs wan settings with num_views == views_per_iteration")
            if self.appearance_iterations or self.lowres_fraction or self.progressive:
                raise ValueError("the wan prior renders every frame at full size from iteration 0: "
                                 "appearance_iterations, lowres_fraction and progressive must be 0")


def wan_settings(variant: Variant, views: int) -> WanConfig:
    """The Wan preset of ``variant`` ("i2v-a14b" or "ti2v-5b") with ``views`` cameras per
    iteration."""
    return replace(WAN_PRESETS[variant](), num_views=views)


def paper(prior: Prior = "wan") -> FlowConfig:
    """The paper's setting: 832x464, 41 frames, 2000 iterations, batch 4 (supp. §A.1)."""
    from flowgen.control import paper_config
    from flowgen.mesh_fit import paper_mesh_fit

    return FlowConfig(
        prior=prior,
        controls=paper_config(),
        mesh_fit=paper_mesh_fit(),
        weights=sds_weights() if prior == "wan" else video_weights(),
        appearance_iterations=0 if prior == "wan" else 200,
        wan=wan_settings("i2v-a14b", 4) if prior == "wan" else None,
    )


def fast(prior: Prior = "wan") -> FlowConfig:
    """A quicker GPU setting: half resolution, 25 frames, 800 iterations."""
    return replace(paper(prior), max_side=416, num_frames=25, iterations=800, num_gaussians=40_000,
                   split_iteration=60, fine_start=0.4)


def _cpu_wan() -> FlowConfig:
    """The cpu preset of the wan prior: for small Wan models (e.g. trained at 32-64 px and
    9-17 frames by `chord-robot train-prior`) - 17 frames at 64 px wide, one view per
    iteration, 200 iterations, 4000 Gaussians per moving object (more than the pixels of a
    64x32 render), the paper's split (at a twentieth of the run, as 100 of 2000). Measured on
    the trained prior (docs/trained-prior.md): the SDS gradient scaled by 0.003 against
    `sds_cpu_weights` (the paper's balance tore the object), the renders composited over the
    white backdrop of the training clips and the cameras drawn from their elevations and
    distances."""
    from flowgen.control import cpu_config

    wan = replace(wan_settings("i2v-a14b", 1), grad_scale=0.003, background=(1.0, 1.0, 1.0),
                  vae_checkpointing=False, encode_together=True,
                  cameras=CameraSampling(elevation_deg=(12.0, 50.0), margin=(1.0, 1.35)))
    return FlowConfig(
        prior="wan", num_frames=17, iterations=200, max_side=64, num_gaussians=4_000,
        num_static_gaussians=3_000, controls=cpu_config(), views_per_iteration=1, fine_start=0.5,
        weights=sds_cpu_weights(), split_iteration=10, checkpoint_every=50, wan=wan,
    )


def cpu(prior: Prior = "video") -> FlowConfig:
    """Minutes on a CPU: 160 px, 21 frames, 400 iterations of 2 frames (tuned on the hinge test:
    more, cheaper iterations recover late frames better than fewer, larger batches; 600 gave
    the same lid error).

    Frames unlock one by one over the first half, each starting from the previous frame's
    deformation continued at its velocity - the paper's split re-initialisation applied at every
    frame - so the one-off split at iteration 100 is off (it would undo that for late frames).
    """
    from flowgen.control import cpu_config

    if prior == "wan":
        return _cpu_wan()
    return FlowConfig(
        prior=prior,
        num_frames=21,
        iterations=400,
        appearance_iterations=40,
        max_side=160,
        num_gaussians=8_000,
        num_static_gaussians=6_000,
        controls=cpu_config(),
        views_per_iteration=1,
        frames_per_view=2,
        fine_start=0.6,
        weights=video_weights(),
        split_iteration=None,
        progressive=0.5,
        checkpoint_every=50,
    )


PRESETS = {"paper": paper, "fast": fast, "cpu": cpu}
"""Preset name -> function(prior) returning a FlowConfig (the registry the CLI uses)."""


def preset(name: str, prior: Prior = "video") -> FlowConfig:
    """The named preset for ``prior``; ValueError names the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    return PRESETS[name](prior)
