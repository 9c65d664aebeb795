"""A flow run's configuration: a `flowgen` preset plus overrides, declared once.

`FLOW_OVERRIDES` is the one table of what a user may change on top of a preset: each entry
names its option, the config field it sets, its help and how it is applied. `flow_config`
applies them; the CLI builds its options from the same table (`options`), so an override is
never declared twice, and a `ConfigError` naming a field is re-worded with the option that
sets it (`FIELD_OPTIONS`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chord_robot.errors import ConfigError, quote

PRIORS = ("video", "wan")
"""The flow priors: given videos, or Wan 2.2 score distillation."""


@dataclass(frozen=True)
class Override:
    """One setting a user may change on top of a preset.

    Attributes:
        name: the option's name (``--name`` on the command line, ``name`` with ``_`` for ``-``
            as a keyword of `flow_config`).
        field: the config field it sets (dotted for nested configs, e.g. ``wan.tau_schedule``).
        help: what it does, with the values it takes.
        type: the value's type (``bool`` makes a switch).
        apply: (config, value) -> config with the value set; raises ConfigError naming
            ``field`` for a value out of range.
        wan_only: the setting exists for the wan prior only.
        negative: the switch's off form (``--no-mesh-fit``), for a switch that is on by default.
    """

    name: str
    field: str
    help: str
    type: type
    apply: Callable[[Any, Any], Any]
    wan_only: bool = False
    negative: str | None = None

    @property
    def keyword(self) -> str:
        return self.name.replace("-", "_")


def parse_size(text: str | tuple[int, int]) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"64x48"``) or (width, height) -> (width, height); ConfigError otherwise."""
    if isinstance(text, tuple):
        parts = [str(v) for v in text]
    else:
        parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ConfigError("render_size", f"{{field}} must be WIDTHxHEIGHT in pixels, e.g. 64x48, got {quote(text)}")
    return int(parts[0]), int(parts[1])


def _check_choice(field: str, value: str, choices) -> str:
    if value not in choices:
        raise ConfigError(field, f"unknown {{field}} {quote(value)}; one of {', '.join(choices)}")
    return value


def _frames(config, frames: int):
    if frames < 2:
        raise ConfigError("num_frames", f"{{field}} must be at least 2 (frame 0 is the scan's pose), got {frames}")
    return dataclasses.replace(config, num_frames=frames)


def _iterations(config, iterations: int):
    """Motion iterations; the appearance stage, checkpoints and the wan split keep their share."""
    if iterations < 1:
        raise ConfigError("iterations", f"{{field}} must be at least 1, got {iterations}")
    changes: dict[str, Any] = {"iterations": iterations,
                               "checkpoint_every": max(1, min(config.checkpoint_every, iterations // 4 or 1))}
    if config.appearance_iterations:
        changes["appearance_iterations"] = max(1, round(config.appearance_iterations * iterations / config.iterations))
    if config.prior == "wan" and config.split_iteration is not None:
        changes["split_iteration"] = max(1, round(config.split_iteration * iterations / config.iterations))
    return dataclasses.replace(config, **changes)


def _variant(config, variant: str):
    """Another Wan model: its own settings, but the preset's guidance, gradient scale, backdrop,
    cameras and tau schedule (those belong to the preset, not the model)."""
    from flowgen.config import wan_settings
    from flowgen.priors.wan import VARIANTS

    _check_choice("wan.variant", variant, VARIANTS)
    kept = {f: getattr(config.wan, f) for f in ("guidance_start", "guidance_end", "grad_scale", "background",
                                                "cameras", "tau_schedule", "sds_space", "image_blur")}
    wan = dataclasses.replace(wan_settings(variant, config.views_per_iteration), **kept)
    return dataclasses.replace(config, wan=wan)


def _tau_schedule(config, schedule: str):
    from flowgen.priors.wan import TAU_SCHEDULES

    _check_choice("wan.tau_schedule", schedule, TAU_SCHEDULES)
    return dataclasses.replace(config, wan=dataclasses.replace(config.wan, tau_schedule=schedule))


def _vae_gradient(config, how: str):
    from flowgen.priors.wan import VAE_GRADIENTS

    _check_choice("wan.vae_gradient", how, VAE_GRADIENTS)
    return dataclasses.replace(config, wan=dataclasses.replace(config.wan, vae_gradient=how))


def _store(config, store: str):
    from flowgen.config import DEFORMATION_STORES

    return dataclasses.replace(config, deformation_store=_check_choice("deformation_store", store, DEFORMATION_STORES))


def _rigid_parts(config, on: bool):
    from flowgen.config import rigid_parts

    return rigid_parts(config) if on else config


def _mesh_fit(config, on: bool):
    return dataclasses.replace(config, mesh_fit=dataclasses.replace(config.mesh_fit, enabled=on))


FLOW_OVERRIDES: tuple[Override, ...] = (
    Override("frames", "num_frames", "Frames of the flow (default: the preset's; wan: 1 + 4k, e.g. 9, 17, 41).",
             int, _frames),
    Override("iters", "iterations", "Motion iterations (default: the preset's).", int, _iterations),
    Override("seed", "seed", "Seed (default: the preset's).", int,
             lambda c, s: dataclasses.replace(c, seed=s)),
    Override("variant", "wan.variant", "Which Wan 2.2 model (default: the paper's i2v-a14b).", str, _variant,
             wan_only=True),
    Override("size", "render_size", "Render size WIDTHxHEIGHT, multiples of the model's 16 (A14B) or 32 (5B), "
             "e.g. 64x48 (default: the preset's long side at 832:464).", str,
             lambda c, s: dataclasses.replace(c, render_size=parse_size(s)), wan_only=True),
    Override("tau-schedule", "wan.tau_schedule", "Noise levels per iteration: annealed (the paper's W(tau) "
             "schedule, default) or uniform (ablation).", str, _tau_schedule, wan_only=True),
    Override("vae-gradient", "wan.vae_gradient", "How the SDS gradient reaches the renders: full (back through "
             "the VAE encoder, the paper's; default) or linear (the encoder's averaged Jacobian, no encoder "
             "backward: faster, approximate).", str, _vae_gradient, wan_only=True),
    Override("store", "deformation_store", "Deformations over time: fenwick (the paper's tree, default) or "
             "per-frame (ablation: independent frames).", str, _store),
    Override("rigid-parts", "rigid_parts", "The moving objects are made of rigid parts (a laptop, a lamp; not "
             "cloth): penalise each part's deviation from a rigid motion, hold touching parts together, and turn "
             "each part not resting on the table about its joint as a whole.", bool, _rigid_parts),
    Override("mesh-fit", "mesh_fit.enabled", "Fit mesh objects' Gaussians to renders of the mesh (off: the "
             "surface samples as they are).", bool, _mesh_fit, negative="no-mesh-fit"),
)
"""Every override of a flow run, in the order the CLI lists them."""

FIELD_OPTIONS: dict[str, str] = {"preset": "--preset", "prior": "--prior",
                                 **{o.field: f"--{o.name}" for o in FLOW_OVERRIDES}}
"""Config field -> the command-line option that sets it (for re-wording ConfigErrors)."""


SHIPPED_PRESET: dict[str, Any] = {"iters": 300, "rigid_parts": True}
"""The ``shipped`` preset: the ``cpu`` preset of the wan prior with these overrides, at the
shipped prior's own clip size (`flowgen.priors.shipped.clip_size`: frames and pixels it was
trained at), the setting it was measured at (300 iterations; its objects are made of rigid
parts). ~43-46 s a flow at 9 frames of 32x32 on 2 cores (`chord-robot flow`, wall); fewer
iterations lose motion (150 lost the lamp on one seed of four, 200 turns the lid less;
docs/performance.md). Its control points keep one isotropic scale: with the paper's three
scales the 4-seed flows moved by a few degrees, but the robot trials on seeds 100-107 fell from
6/8 to 4/8 (lower-lamp) and 8/8 to 6/8 (close-laptop) (docs/flowgen-notes.md)."""


SHIPPED_SETTINGS: dict[str, dict[str, Any]] = {
    "pick": {"wan.sds_space": "image", "wan.grad_scale": 10.0, "weights.turn": 30000.0},
}
"""Per shipped model (by its directory's name, `flowgen.priors.shipped.MODEL_DIRS`), the
`flowgen.config.FlowConfig` fields its ``shipped`` preset sets beyond `SHIPPED_PRESET`, at the
values it was measured at. The pick model distils in pixels (``wan.sds_space``: its 2x VAE's
latents do not pull the carried object; docs/shipped-prior.md, sessions 31-32) with the
gradient scaled to match (``wan.grad_scale``) and the carried object's turn held
(``weights.turn``): 6/8 at seeds 100-107 and 6/8 at 300-307 on the pick-banana task
(docs/shipped-prior.md, session 34)."""


def shipped_preset(root: Any = None) -> dict[str, Any]:
    """`SHIPPED_PRESET` with the shipped model's (``root``, default the first) frames and render
    size (without its weights, the cpu preset's: loading the model then says they are missing)."""
    from flowgen.priors import shipped

    root = shipped.MODEL_DIR if root is None else root
    if not shipped.available(root):
        return dict(SHIPPED_PRESET)
    frames, height, width = shipped.clip_size(root)
    return {"frames": frames, "size": (width, height), **SHIPPED_PRESET}


def replace_field(config: Any, path: str, value: Any) -> Any:
    """``config`` (nested frozen dataclasses) with the dotted field ``path`` set to ``value``;
    KeyError naming ``path`` when there is no such field."""
    head, _, rest = path.partition(".")
    if not dataclasses.is_dataclass(config) or head not in {f.name for f in dataclasses.fields(config)}:
        raise KeyError(path)
    if rest:
        try:
            value = replace_field(getattr(config, head), rest, value)
        except KeyError:
            raise KeyError(path) from None
    return dataclasses.replace(config, **{head: value})


def flow_config(preset: str = "cpu", prior: str = "video", *, model: Any = None, **overrides: Any):
    """The named `flowgen` preset of ``prior`` with ``overrides`` applied.

    Args:
        preset: "paper", "fast" or "cpu" (`flowgen.config.PRESETS`), or "shipped" (the wan
            prior's cpu preset at the shipped model's size, `shipped_preset`, with its own
            `SHIPPED_SETTINGS`).
        prior: "video" or "wan".
        model: the weights the ``shipped`` preset is for (default: the first shipped model,
            `flowgen.priors.shipped.MODEL_DIR`): their clips' size when `train-prior` made them
            (else the cpu preset's), and a shipped model's own `SHIPPED_SETTINGS`; other
            presets ignore it.
        **overrides: keyed by `Override.keyword` (``frames=9, iters=300, size=(32, 32),
            rigid_parts=True`` ...); None leaves the preset's value (a switch: False).

    Raises:
        ConfigError naming the field for an unknown preset or prior, a value out of range, or a
        wan-only setting with the video prior. TypeError for an unknown keyword (a bug).
    """
    from flowgen.config import PRESETS

    if preset == "shipped":
        if prior != "wan":
            raise ConfigError("preset", "{field} shipped is for the wan prior (the shipped model)")
        switches = {o.keyword: o.negative is not None for o in FLOW_OVERRIDES if o.type is bool}
        given = {k: v for k, v in overrides.items()  # a switch at its default is not given (the CLI's)
                 if v is not None and not (k in switches and v is switches[k])}
        from flowgen.priors import shipped

        root = shipped.MODEL_DIR if model is None else Path(model).resolve()
        config = flow_config("cpu", prior, **{**shipped_preset(root), **given})
        settings = SHIPPED_SETTINGS.get(root.name, {}) if shipped.is_shipped(root) else {}
        for path, value in settings.items():
            config = replace_field(config, path, value)
        return dataclasses.replace(config, per_axis_control_scales=False)  # as measured (SHIPPED_PRESET)
    if preset not in PRESETS:
        raise ConfigError("preset", f"unknown {{field}} {quote(preset)}; one of {', '.join([*PRESETS, 'shipped'])}")
    _check_choice("prior", prior, PRIORS)
    by_keyword = {o.keyword: o for o in FLOW_OVERRIDES}
    unknown = sorted(set(overrides) - set(by_keyword))
    if unknown:
        raise TypeError(f"flow_config got unknown override(s) {', '.join(unknown)}")
    config = PRESETS[preset](prior)
    for o in FLOW_OVERRIDES:  # the table's order: e.g. a variant's settings before its tau schedule
        value = overrides.get(o.keyword)
        if value is None or (o.type is bool and value is (o.negative is not None)):
            continue  # left at the preset's (a switch at its default)
        if o.wan_only and prior != "wan":
            why = "renders at its videos' size" if o.field == "render_size" else "has no such setting"
            raise ConfigError(o.field, f"{{field}} applies to the wan prior (the video prior {why})")
        config = o.apply(config, value)
    return config


def options(overrides: tuple[Override, ...] = FLOW_OVERRIDES) -> list:
    """The overrides as typer options: `inspect.Parameter` objects (keyword-only, with their
    ``typer.Option`` defaults and types) for a command's signature (`with_overrides`). Nothing
    heavy is imported: the CLI builds every command's options for any ``--help``."""
    import inspect

    import typer

    params = []
    for o in overrides:
        text = ("wan: " + o.help) if o.wan_only else o.help
        if o.type is bool:
            decl = f"--{o.name}/--{o.negative}" if o.negative else f"--{o.name}"
            default, annotation = o.negative is not None, bool
        else:
            decl, default, annotation = f"--{o.name}", None, o.type | None
        params.append(inspect.Parameter(o.keyword, inspect.Parameter.KEYWORD_ONLY,
                                        default=typer.Option(default, decl, help=text), annotation=annotation))
    return params


def with_overrides(command: Callable[..., Any], overrides: tuple[Override, ...] = FLOW_OVERRIDES):
    """``command`` (whose last parameter is ``**overrides``) with one typer option per override
    added to its signature, so the CLI lists them and passes them on as keywords."""
    import functools
    import inspect

    hints = typing.get_type_hints(command)
    signature = inspect.signature(command)
    fixed = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
             if p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = options(overrides)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        return command(**kwargs)

    wrapper.__signature__ = signature.replace(parameters=fixed + added, return_annotation=None)
    wrapper.__annotations__ = {p.name: p.annotation for p in fixed + added} | {"return": None}
    return wrapper


@dataclass(frozen=True)
class PriorChoice:
    """Which prior, weights and preset a flow run uses, and why (`choose_prior`).

    Attributes:
        prior: "video" or "wan".
        model: the Wan-layout weights directory (None: the local Hugging Face cache; video: None).
        preset: the flowgen preset (or "shipped").
        why: one line for the log.
    """

    prior: str
    model: Any
    preset: str
    why: str


def choose_prior(prior: str | None, model: Any, preset: str | None, has_videos: bool,
                 cuda: bool | None = None, task: str | None = None) -> PriorChoice:
    """The situation decides what the user did not: a guidance video means the video prior;
    otherwise the wan prior, with the shipped model that knows the task's motion when neither
    ``prior`` nor ``model`` is given (`shipped_model`). The preset: ``cpu`` for the video prior, ``shipped``
    for a shipped model or one `train-prior` made (at its clips' size; a shipped model's own
    `SHIPPED_SETTINGS` stay its own), ``paper`` for other Wan weights on a CUDA GPU, ``cpu``
    without one. An explicit ``preset`` always wins.

    Args:
        prior, model, preset: what the user gave (None: not given).
        has_videos: guidance videos were given.
        cuda: a CUDA GPU is available (None: ask torch).
        task: the task's words, which choose the shipped model (None: the first).

    Raises:
        InputError (exit 2) when a shipped model is chosen for ``task`` and none knows its
        motion (`shipped_model`).
    """
    from flowgen.priors import shipped

    if prior is None:
        prior = "video" if has_videos or (model is None and not shipped.available()) else "wan"
        if prior == "wan" and model is None:
            model = shipped_model(task)
    _check_choice("prior", prior, PRIORS)
    if prior == "video":
        return PriorChoice(prior, None, preset or "cpu", f"video prior, preset {preset or 'cpu'}"
                           + (" (given)" if preset else " (the video prior's)"))
    if shipped.is_shipped(model):
        chosen = preset or "shipped"
        return PriorChoice(prior, model, chosen, f"the shipped prior ({model}), preset {chosen}"
                           + (" (given)" if preset else " (its own)"))
    if shipped.trained(model):  # made by `train-prior`: at its own clips' size
        chosen = preset or "shipped"
        return PriorChoice(prior, model, chosen, f"a prior trained by train-prior ({model}), preset {chosen}"
                           + (" (given)" if preset else " (at its clips' size)"))
    if preset is not None:
        return PriorChoice(prior, model, preset, f"Wan weights {model or 'from the Hugging Face cache'}, preset {preset} (given)")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    chosen = "paper" if cuda else "cpu"
    return PriorChoice(prior, model, chosen, f"Wan weights {model or 'from the Hugging Face cache'}, preset {chosen} "
                       + ("(Wan 2.2 on a CUDA GPU: the paper's)" if cuda else "(no CUDA GPU)"))


def shipped_model(task: str | None) -> Path:
    """The shipped model that knows the motion ``task`` asks for: each reads the words against
    its own sentences (`chord_robot.app.tasktext.match_task`); when several do ("take the banana
    off the plate by the laptop"), the one whose object the words name first, the earlier of
    `flowgen.priors.shipped.MODEL_DIRS` on a tie. The first shipped model without a task.

    Raises:
        InputError (exit 2) naming every motion the shipped models know, and that open-ended
        tasks need Wan 2.2 weights, when none knows the task's.
    """
    from chord_robot.app.tasktext import match_task, words
    from chord_robot.errors import InputError
    from flowgen.priors import shipped

    if task is None:
        return shipped.MODEL_DIR
    tokens = words(task)
    found = []
    for order, root in enumerate(shipped.MODEL_DIRS):
        if not shipped.available(root):
            continue
        try:
            match = match_task(task, shipped.prompts(root))
        except InputError:
            continue
        found.append((tokens.index(match.noun) if match.noun in tokens else -1, order, root))
    if found:
        return min(found)[2]
    known = shipped.known_prompts()
    return known[match_task(task, known).prompt]  # refused: naming every shipped model's motions
