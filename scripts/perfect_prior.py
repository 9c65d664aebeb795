"""How far the chord source's distillation carries a task's scripted motion when the prior knows it.

    python scripts/perfect_prior.py TASK SEEDS [--set FIELD=VALUE ...] [--spread S] [--completions C,...] [--model DIR]
                                    [--pixels] [--flows DIR] [--trace DIR] [--trained] [-o OUT.json]

A diagnostic of the distillation (docs/comparison/README.md, session 29), not the method: it
tells a prior that cannot ask for a motion from a distillation that cannot follow one. Per seed,
the task is reset and distilled as `chord-robot eval --flow-source chord` does
(`chord_robot.app.taskflows.flow_from_task_words`: the task's labelled scan, the shipped
prior's preset with each ``--set`` applied as in `scripts/chord_sweep.py`, its cameras, noise,
tau schedule, regularisers and the VAE's backward), but the transformer's velocity is replaced
by the exact velocity of a prior that knows the answer: the distribution N(z*, S^2 I) around
the latents z* of the task's scripted motion (`Task.oracle_flow`) filmed from the view's camera
- the model's own Gaussians, each moved and turned as its nearest scripted points move
(`chord_robot.flow.interpolate_trajectories`) and shaded at its turned normal, drawn by the
loop's renderer over the same backdrop and encoded by the prior's VAE (``--model``, default the
first shipped model, `flowgen.priors.shipped.MODEL_DIR`, with its 4x VAE and preset, a pick
included; before session 35 the run took whatever sat in ``flowgen/priors/shipped/model``, in a
clone for sessions 32-34's pick priors; the pick model, which `chord-robot eval` uses for a
pick since session 35: ``--model flowgen/priors/shipped/pick``). Under z_tau = (1 - tau) z + tau eps that
prior's denoiser is

    E[z | z_tau] = z* + a (z_tau - (1 - tau) z*),    a = (1 - tau) S^2 / ((1 - tau)^2 S^2 + tau^2),

and its velocity (z_tau - E[z | z_tau]) / tau (``--spread`` S, default 0.5; S -> 0 is a single
video, whose gradient (z - z*) / tau the loop's divergence check refuses at low tau). Guidance
has nothing to act on: both branches are the same velocity. With ``--set wan.sds_space=image``
the residual is taken in pixels (`flowgen.priors.wan.WanConfig.sds_space`); ``--pixels`` then
takes it against the scripted video itself (no noise, no VAE round trip) instead of the
decoded denoised estimate - without the estimate's noise, spread, VAE round trip and ~tau
factor at once (which of them matters is not separated). A task the shipped prior
has no sentence for (pick-banana, fold-fabric) is distilled under its family's settings (a carried
object one rigid body, a cloth deformable: `flowgen.config.free_object`) with one of the
prior's sentences as the ignored text condition (ignored unless ``--trained``; each row names the
sentence, ``sentence``).

Prints one line of JSON per seed: what the flow asks (`Task.describe_flow`) beside what the
scripted motion asks, and per moving object its end error (the mean distance, mm, between
where the flow and the scripted motion put the object's Gaussians at the last frame), how
far the scripted motion and the flow carry its centre (mm), and per frame of the flow the
centre's height above its start (``*_lift_mm``) and its distance along the table from its
start (``*_along_mm``) and the angle the object has turned from its rest pose as a whole
(``*_turn_deg``, the best-fitting rotation), the scripted motion's at the same times; the end error is over all
the object's Gaussians (a laptop's or a lamp's still base too). A flow already in ``--flows``
(TASK-SEED.zarr, from an earlier run) is read and described instead of distilled.

``--trace DIR`` (with ``--set wan.sds_space=image``, not ``--pixels``): how much of the scripted
motion the residual's target shows. Per step (a view; the presets take one per iteration), per
frame, over the pixels where the scripted motion brings the moving objects (not covered at rest:
``arrival``) and those it takes them from (``departure``; the moving objects drawn alone, so
pixels a still object hides count too), the least-squares fraction ``a`` in ``target - render = a (scripted - render)``
(1: the target shows the scripted frame there, 0: the render's own), for the decoded denoised
estimate (``target``), and the same between the model at rest and the scripted video for the
VAE's round trip of the scripted video (``roundtrip``, the estimate at tau -> 1: what the VAE
keeps of the motion). One line of JSON per step in DIR/TASK-SEED.jsonl; the row's
``shown`` pools them over frames 1.. and iterations, each frame weighed by its squared change
there (the target's per half of the run; the first iterations' target, at high noise, is the
round trip). One scripted motion only (no ``--completions``).
An object the VAE drops from every frame scores ~0 arriving and ~1 departing; one it copies from
the first frame scores ~0 both ways.

``--trained`` (with ``--trace``): the prior's own velocity is kept (the shipped prior, or whatever
model is in its place) and the scripted motion only supplies the trace's reference and round
trip: the trace then tells how much of the scripted motion the trained prior's decoded estimate asks for, step
by step, under the same distillation.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chord_sweep import adjuster, parse_seeds
from motion_shown import change_masks, shown, trace_summary


def scripted_poses(model, oracle, completion: float = 1.0) -> list[tuple]:
    """Per moving object of ``model``, its rest Gaussians posed as the scripted motion's nearest
    points move - ((T, N, 3) means, (T, N, 4) wxyz rotations) tensors at the model's T frames
    (the scripted trajectories resampled linearly in time first; ``completion`` < 1: the motion's
    first part only, stretched over the T frames)."""
    import numpy as np
    import torch

    from chord_robot.flow import interpolate_trajectories, matrix_to_quat

    out = []
    for obj in model.moving:
        motion = oracle.objects[obj.name]
        scripted = motion.trajectories
        at = np.linspace(0, completion * (len(scripted) - 1), model.num_frames)
        lo = np.floor(at).astype(int)
        hi = np.minimum(lo + 1, len(scripted) - 1)
        w = (at - lo)[:, None, None]
        means, turns = interpolate_trajectories(obj.rest.means.detach().cpu().numpy(), motion.points,
                                                (1 - w) * scripted[lo] + w * scripted[hi], rotations=True)
        out.append((torch.as_tensor(means), torch.as_tensor(matrix_to_quat(turns), dtype=torch.float32)))
    return out


def perfect_velocity(z_tau, tau: float, targets: list, spread: float):
    """The exact rectified-flow velocity (z_tau - E[z | z_tau]) / tau of an equal mixture of
    N(z_k, spread^2 I), one per target z_k (each (1, ...), broadcast over z_tau's batch (B, ...)).

    Under z_tau = (1 - tau) z + tau eps a component's posterior mean is z_k + a (z_tau - (1 - tau) z_k),
    a = (1 - tau) s^2 / ((1 - tau)^2 s^2 + tau^2); the components are weighed by how likely each
    makes z_tau (z_tau ~ N((1 - tau) z_k, ((1 - tau)^2 s^2 + tau^2) I)).
    """
    import torch

    s2 = spread**2
    a = (1 - tau) * s2 / ((1 - tau) ** 2 * s2 + tau**2)
    x = z_tau.float()
    means = torch.stack([z + a * (x - (1 - tau) * z) for z in (t.expand_as(x) for t in targets)])
    var = (1 - tau) ** 2 * s2 + tau**2
    logits = torch.stack([-(x - (1 - tau) * t).square().flatten(1).sum(1) / (2 * var) for t in targets])
    w = torch.softmax(logits, 0).reshape(len(targets), -1, *[1] * (x.ndim - 1))
    return (x - (w * means).sum(0)) / tau


def _decode():
    """`flowgen.priors.wan.prior.decode_video` as the library defines it (without a trace's wrapper)."""
    from flowgen.priors.wan import prior as wan_module

    return getattr(wan_module.decode_video, "__wrapped__", wan_module.decode_video)


@dataclass
class PerfectPrior:
    """The loop's SDS prior with its transformer's velocity replaced (unless ``trained``) by the exact one of
    N(z*, spread^2 I), z* the scripted motion filmed from each view's camera (module docstring),
    or of an equal mixture of such over ``completions`` (the motion carried that fraction of the
    way). Cameras, noise, schedules and the VAE's backward stay the wrapped `SdsPrior`'s."""

    inner: object
    model: object
    oracle: object
    spread: float
    completions: tuple[float, ...] = (1.0,)
    pixels: bool = False
    trace: list | None = None
    """Rows of ``--trace`` (None: not traced)."""
    trained: bool = False
    """``--trained``: the prior's own velocity is kept; the scripted motion serves the trace only."""
    target: object = None
    poses: list = field(default_factory=list)
    pending: dict | None = None
    """``--trace``: the view being stepped (its iteration, render, scripted video, masks and round
    trip), until the decoded estimate of its step reaches `traced`."""
    rest: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.poses = [scripted_poses(self.model, self.oracle, c) for c in self.completions]
        self.rest = scripted_poses(self.model, self.oracle, 0.0)
        if self.trained:
            return
        # the one WanPrior of this run answers with the scripted video's velocity (its instance only)
        object.__setattr__(self.inner.wan, "velocity_model", self._velocity_model)

    def _velocity_model(self, expert, condition):
        return lambda z_tau, tau, embedding: perfect_velocity(z_tau, tau, self.target, self.spread)

    def _scripted_video(self, view, poses, cover: bool = False):
        """(T, H, W, 3) the scripted motion (``poses``: `scripted_poses`) from ``view``'s
        camera, over the prior's backdrop: each Gaussian moved and turned, and shaded at its
        turned normal, as the loop's renders pose and shade the model (`flowgen.objective`).
        ``cover``: (T, H, W) the moving objects' coverage alone instead."""
        import torch

        from flowgen.objective import _static_splats
        from flowgen.priors.sds_prior import over_backdrop
        from flowgen.quat import quat_multiply
        from flowgen.shading import albedo, gaussian_normals, shade
        from flowgen.splats import Splats, render_splats_frames

        model = self.model
        static = _static_splats(model) if view.background is None and not cover else []
        frames = []
        for t in view.frames.tolist():
            parts = []
            for obj, (means, turns) in zip(model.moving, poses):
                quats = quat_multiply(turns[t], obj.rest.quats)
                normals = gaussian_normals(quats) if obj.rest.normals is not None else None
                colour = shade(model, albedo(obj.albedo_logit), normals).expand(len(quats), 3)
                parts.append(Splats(means[t], quats, obj.log_scales.exp(), torch.sigmoid(obj.opacity_logit),
                                    torch.cat((colour, torch.zeros(len(quats), 6)), -1)))
            frames.append(Splats.join(parts + static))
        images = render_splats_frames(frames, view.camera, None if cover else view.background)
        alpha = torch.stack([image.alpha for image in images])
        if cover:
            return alpha.reshape(alpha.shape[:3])
        rgb = torch.stack([image.features[..., :3] for image in images])
        return over_backdrop(rgb, alpha, self.inner.wan.config.background)  # as `SdsPrior.loss` does

    def loss(self, view, rgb, alpha, scale):
        import torch

        if self.pixels:
            return self._pixel_loss(view, rgb, alpha)
        with torch.no_grad():
            videos = [self._scripted_video(view, p) for p in self.poses]
            self.target = [self.inner.wan.encode_pixels(v[None]).float() for v in videos]
            if self.trace is not None:
                self._trace_view(view, rgb, alpha, videos[0])
        return self.inner.loss(view, rgb, alpha, scale)

    def _trace_view(self, view, rgb, alpha, scripted):
        """Before this view's step: what `traced` compares the decoded estimate with, and the
        round trip's row (the VAE's decoding of the scripted video's latents)."""
        from flowgen.priors.sds_prior import over_backdrop

        wan, inner = self.inner.wan, self.inner
        it, _ = inner.iteration_of(view)
        render = over_backdrop(rgb, alpha, wan.config.background).detach().float()
        arrival, departure = change_masks(self._scripted_video(view, self.rest, cover=True),
                                          self._scripted_video(view, self.poses[0], cover=True))
        self.pending = {"it": it, "tau": round(wan.tau(it, inner.iterations), 4), "render": render,
                        "scripted": scripted.float(), "arrival": arrival, "departure": departure}
        roundtrip = _decode()(wan.vae, self.target[0])[0, :len(render)].float().to(render.device)
        self.pending["roundtrip"] = self._shown(roundtrip, self._scripted_video(view, self.rest).float())

    def _shown(self, image, start) -> dict:
        """``image`` between ``start`` (0) and the pending view's scripted video (1), per region."""
        p, out = self.pending, {}
        for region in ("arrival", "departure"):
            out[region], out[f"{region}_weight"] = shown(image, start, p["scripted"], p[region])
        return out

    def traced(self, decoded):
        """The image space's decoded estimate (the step's target) measured against the pending
        view's render and scripted video; returned unchanged. A step the loop rolls back stays
        in the trace."""
        p = self.pending
        if p is not None and self.trace is not None:
            target = decoded[0, :len(p["render"])].float().to(p["render"].device)
            self.trace.append({"it": p["it"], "tau": p["tau"], "target": self._shown(target, p["render"]),
                               "roundtrip": p["roundtrip"]})
            self.pending = None
        return decoded

    def _pixel_loss(self, view, rgb, alpha):
        """``--pixels``: the image space's blurred residual (`WanConfig.sds_space` "image", its
        blur and weight) against the scripted video itself: no noise, no spread, no VAE."""
        import torch

        from flowgen.priors.sds_prior import over_backdrop

        wan, inner = self.inner.wan, self.inner
        rgb = over_backdrop(rgb, alpha, wan.config.background)
        it, _ = inner.iteration_of(view)
        with torch.no_grad():
            target = self._scripted_video(view, self.poses[0])
        weight = wan.config.grad_scale * wan.tau_weight(wan.tau(it, inner.iterations))
        return {"sds": weight * 0.5 * wan.image_residual(rgb, target, it, inner.iterations).square().sum()}

    def __getattr__(self, name):  # views, still, release, plan, num_sources, iteration_of
        return getattr(self.inner, name)


def _patched(spread: float, completions: tuple[float, ...], oracle_box: dict, pixels: bool = False,
             trained: bool = False):
    """Patch the chord source's run for this process: its prior wrapped (`PerfectPrior`, the
    latest kept in ``oracle_box["prior"]``), the image space's decoding of its estimate passed
    to that prior (``--trace``), and the shipped prior's reading of a task it has no sentence
    for made its family's."""
    from chord_robot.app import flowrun, tasktext
    from chord_robot.errors import InputError
    from flowgen.priors.wan import prior as wan_module

    make_prior, match = flowrun._prior, tasktext.match_task

    def prior(inputs, model, task, log):
        oracle_box["prior"] = PerfectPrior(make_prior(inputs, model, task, log), model, oracle_box["flow"], spread,
                                           completions, pixels, oracle_box.get("trace"), trained)
        return oracle_box["prior"]

    def decode(vae, z):  # the image space's decoded estimate, seen by ``--trace``
        decoded = decode_video(vae, z)
        return oracle_box["prior"].traced(decoded) if "prior" in oracle_box else decoded

    def read(text, prompts):
        try:
            found = match(text, prompts)
        except InputError:  # the task's family, any sentence (the exact velocity ignores it)
            words = tasktext.words(text)
            family = "pick" if any(w in ("plate", "dish", "saucer") for w in words) else "cloth"
            nouns = [w for f in tasktext.FAMILIES if f.name == family for w in words if w in f.nouns]
            if not nouns:
                raise
            found = tasktext.TaskMatch(next(iter(prompts)), family, nouns[0])
        oracle_box["sentence"] = found.prompt
        return found

    flowrun._prior, tasktext.match_task = prior, read
    decode_video = _decode()
    wan_module.decode_video = functools.wraps(decode_video)(decode)


def _turn_deg(rest, posed) -> float:
    """The angle (degrees) of the rotation that best carries ``rest`` (N, 3) onto ``posed`` about
    their centroids (Kabsch, `chord_robot.geometry.kabsch`)."""
    import numpy as np

    from chord_robot.geometry import kabsch

    turn = kabsch(rest, posed)[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(turn) - 1.0) / 2.0, -1.0, 1.0))))


def end_figures(task, flow, oracle) -> dict:
    """Per moving object of the scripted motion: its end error and both centres' travel, mm."""
    import numpy as np

    from chord_robot.flow import interpolate_trajectories

    out = {}
    for name, scripted in oracle.moving().items():
        got = flow.objects[name]
        want = interpolate_trajectories(got.points, scripted.points, scripted.trajectories)[-1]
        travel = np.linalg.norm(scripted.trajectories[-1].mean(0) - scripted.trajectories[0].mean(0))
        if travel < 1e-3:
            continue
        frames = np.linspace(0, len(scripted.trajectories) - 1, len(got.trajectories)).round().astype(int)
        centres = {"flow": got.trajectories.mean(1), "scripted": scripted.trajectories[frames].mean(1)}
        paths = {"flow": got.trajectories, "scripted": scripted.trajectories[frames]}
        out[name] = {"end_error_mm": round(1000 * float(np.linalg.norm(got.trajectories[-1] - want, axis=1).mean()), 1),
                     "scripted_travel_mm": round(1000 * float(travel), 1),
                     "flow_travel_mm": round(1000 * float(np.linalg.norm(got.trajectories[-1].mean(0)
                                                                         - got.trajectories[0].mean(0))), 1),
                     **{f"{k}_lift_mm": [round(1000 * float(z)) for z in c[:, 2] - c[0, 2]] for k, c in centres.items()},
                     **{f"{k}_along_mm": [round(1000 * float(d)) for d in np.linalg.norm(c[:, :2] - c[0, :2], axis=1)]
                        for k, c in centres.items()},
                     **{f"{k}_turn_deg": [round(_turn_deg(p[0], q)) for q in p] for k, p in paths.items()}}
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("seeds", type=parse_seeds)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--spread", type=float, default=0.5, help="S, the perfect prior's spread about the scripted latents")
    parser.add_argument("--completions", default="1", help="C1,C2,...: a mixture of the motion carried these "
                        "fractions of the way (0: still), equally likely")
    parser.add_argument("--pixels", action="store_true", help="with --set wan.sds_space=image: the blurred "
                        "residual against the scripted video itself (no noise, no VAE) instead of the decoded estimate")
    parser.add_argument("--flows", type=Path, help="keep the flows here (TASK-SEED.zarr); a flow already "
                        "there is read instead of distilled")
    parser.add_argument("--trace", type=Path, help="with --set wan.sds_space=image: how much of the scripted motion "
                        "the residual's target shows, per iteration and frame, in DIR/TASK-SEED.jsonl")
    parser.add_argument("--trained", action="store_true", help="with --trace: keep the prior's own velocity; "
                        "the trace measures what its estimate asks of the scripted motion")
    parser.add_argument("--model", type=Path, help="the prior whose VAE and preset (and, with --trained, velocity) "
                        "the run uses (default: the first shipped model)")
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    from chord_robot.app.evaluate import EvalConfig
    from chord_robot.app.taskflows import flow_from_task_words
    from chord_robot.flow import ObjectFlow
    from flowgen.priors import shipped
    from sim import world as simworld
    from sim.tasks import make

    if args.pixels and "wan.sds_space=image" not in args.settings:
        raise SystemExit("perfect_prior: --pixels is the image space's residual: give --set wan.sds_space=image")
    if args.pixels and args.completions != "1":
        raise SystemExit("perfect_prior: --pixels pulls towards the whole scripted motion: no --completions")
    if args.trace and ("wan.sds_space=image" not in args.settings or args.pixels or args.completions != "1"):
        raise SystemExit("perfect_prior: --trace measures the decoded estimate against one scripted motion: "
                         "give --set wan.sds_space=image, without --pixels or --completions")
    if args.trained and (not args.trace or args.spread != parser.get_default("spread")):
        raise SystemExit("perfect_prior: --trained keeps the prior's own velocity to trace it: give --trace, "
                         "without --spread")
    adjust = adjuster(args.settings)
    if args.flows:
        args.flows.mkdir(parents=True, exist_ok=True)
    oracle_box: dict = {}
    completions = tuple(float(c) for c in args.completions.split(","))
    if args.trace and args.flows:
        kept = [args.flows / f"{args.task}-{seed}.zarr" for seed in args.seeds]
        if any(k.exists() for k in kept):
            raise SystemExit(f"perfect_prior: --trace distils; {next(k for k in kept if k.exists())} exists "
                             "(a kept flow is read, not distilled)")
    _patched(args.spread, completions, oracle_box, args.pixels, args.trained)
    rows = []
    for seed in args.seeds:
        world = simworld.create(direct=True)
        try:
            task = make(args.task, world)
            task.reset(seed)
            oracle_box["flow"] = oracle = task.oracle_flow(num_frames=EvalConfig.num_frames)
            kept = args.flows / f"{args.task}-{seed}.zarr" if args.flows else None
            read = kept is not None and kept.exists()
            oracle_box["trace"] = [] if args.trace else None
            if read:  # a flow kept by an earlier run: read, not distilled
                flow = ObjectFlow.load(kept)
            else:
                flow = flow_from_task_words(task, model=args.model or shipped.MODEL_DIR, adjust=adjust).flow
                if kept is not None:
                    flow.save(kept)
            row = {"task": args.task, "seed": seed, "settings": args.settings, "pixels": args.pixels, "spread": args.spread,
                   "completions": completions, "trained": args.trained, "model": str(args.model or "shipped/model"),
                   "sentence": oracle_box.get("sentence"),
                   "read_from": str(kept) if read else None,
                   "flow": task.describe_flow(flow), "scripted": task.describe_flow(oracle),
                   "objects": end_figures(task, flow, oracle)}
            if args.trace:
                if not oracle_box["trace"]:
                    raise SystemExit("perfect_prior: --trace saw no decoded estimate (is the run's sds_space image?)")
                args.trace.mkdir(parents=True, exist_ok=True)
                (args.trace / f"{args.task}-{seed}.jsonl").write_text(
                    "".join(json.dumps(r) + "\n" for r in oracle_box["trace"]))
                row["shown"] = trace_summary(oracle_box["trace"])
        finally:
            world.close()
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
