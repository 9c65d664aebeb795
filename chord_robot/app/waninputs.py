"""The Wan prior's side of a flow run: its weights checked against the run's size and device
(with a CPU-time estimate when there is no GPU), their identity for the run's fingerprint, and a
task's words read against the sentences a `train-prior` model knows."""

from __future__ import annotations


def model_digest(root) -> str:
    """The Wan weights' identity for the fingerprint: their path and JSON configs (hashing the
    weights themselves would read tens of GB)."""
    import hashlib

    h = hashlib.sha256(str(root).encode())
    for q in sorted(root.rglob("*.json")):
        h.update(str(q.relative_to(root)).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


def _cpu_flops_per_second(seconds: float = 0.1) -> float:
    """This CPU's float32 matrix-product rate, measured for ``seconds`` (for run-time estimates)."""
    import time

    import torch

    a, b = torch.randn(256, 256), torch.randn(256, 256)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return count * 2 * 256**3 / (time.perf_counter() - start)


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s" if seconds >= 1 else "under a second"


def wan_inputs(config, model, allow_cpu: bool, device: str = "cpu"):
    """Check the Wan weights and the run's size against them, and the device: (config with
    ``render_size`` resolved, weights directory, notes). WeightsError or InputError (exit 2)
    when the weights are missing, the size does not fit, or the run's ``device`` is not a CUDA
    GPU and ``allow_cpu`` is not given (the message estimates the CPU time)."""
    import dataclasses

    from chord_robot.errors import InputError
    from flowgen.priors.wan import model_shape, resolve_model_dir

    variant = config.wan.variant
    root = resolve_model_dir(model, variant)
    shape = model_shape(root, variant)
    width, height = config.render_size or shape.fit_size(config.max_side)
    shape.check(config.num_frames, height, width)
    config = dataclasses.replace(config, render_size=(width, height))
    notes: list[str] = []
    from flowgen.priors import shipped

    if device != "cuda" and not shipped.trained(root):  # the shipped prior (a train-prior one) is CPU-sized
        flops = shape.sds_flops(config.num_frames, height, width, config.wan.max_sequence_length)
        seconds = flops * config.views_per_iteration * config.iterations / _cpu_flops_per_second()
        text = (f"no CUDA GPU for the run: {shape.spec.label} would run on the CPU, estimated at least "
                f"{_duration(seconds)} for {config.iterations} iterations x {config.views_per_iteration} "
                f"view(s) at {width}x{height}x{config.num_frames} (its transformer alone: "
                f"{flops / 1e12:.3g} TFLOP per view)")
        if not allow_cpu:
            raise InputError(f"{text}; pass --allow-cpu to run anyway, or use a GPU")
        notes.append(f"warning: {text}")
    return config, root, tuple(notes)


def read_task(config, root, scene, task: str, object_name: str | None, notes: tuple[str, ...]):
    """A prior `train-prior` made (the shipped ones among them) knows a few sentences: ``task``
    read as one of them (`chord_robot.app.tasktext`), the object it names as the one to move
    (unless ``object_name`` is given), the objects its cameras should frame too (a pick's plate),
    and a carried object or a cloth made jointless. Returns (config, prompt, object_name, framed,
    notes). InputError (exit 2) when it knows no motion for the words."""
    from chord_robot.app.tasktext import destinations, match_task, named_object
    from flowgen.priors import shipped

    match = match_task(task, shipped.prompts(root))
    prompt = match.prompt
    object_name = object_name or named_object(scene, match)
    framed = destinations(scene, match, object_name)
    notes = (*notes, f"the {'shipped ' if shipped.is_shipped(root) else ''}prior reads {task!r} as {prompt!r}"
             + (f", moving {object_name}" if object_name else "")
             + (f", its cameras framing {', '.join(framed)} too" if framed else ""))
    if match.family in ("pick", "cloth") and config.part_motion and not config.free_parts:
        from flowgen.config import free_object

        config = free_object(config, rigid=match.family == "pick")
        notes = (*notes, f"a {'carried object' if match.family == 'pick' else 'cloth'} has no joints: "
                 + ("one rigid body" if match.family == "pick" else "deformable"))
    return config, prompt, object_name, framed, notes
