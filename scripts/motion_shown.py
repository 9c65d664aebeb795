"""What an image-space target shows of a scripted motion (`scripts/perfect_prior.py --trace`).

Pure measures on (T, H, W, 3) videos and (T, H, W) masks: where the moving objects arrive and
leave, the least-squares fraction of the change a target shows there, and a traced run's
pooled figures (docs/shipped-prior.md, "What a VAE keeps of a carried object").
"""

from __future__ import annotations


def change_masks(rest_cover, cover, level: float = 0.5):
    """(arrival, departure): (T, H, W) bools of the pixels the moving objects cover in ``cover``
    (the scripted frames) and not in ``rest_cover`` (the same objects at rest), and the reverse;
    both (T, H, W) coverages in [0, 1]."""
    assert rest_cover.shape == cover.shape and cover.ndim == 3, (rest_cover.shape, cover.shape)
    here, was = cover > level, rest_cover > level
    return here & ~was, was & ~here


def shown(target, start, scripted, where) -> tuple[list, list]:
    """Per frame, the least-squares ``a`` in ``target - start = a (scripted - start)`` over the
    pixels ``where`` ((T, H, W) bools; the images (T, H, W, 3)): the fraction of the way from
    ``start`` to the scripted frame that ``target`` stands there (None for a frame without such
    pixels or change); and each frame's weight, the squared change ``|scripted - start|^2`` there
    (a frame's ``a`` over a few pixels of little change is noise; `trace_summary` pools by it)."""
    assert target.shape == start.shape == scripted.shape and target.ndim == 4, (target.shape, start.shape)
    assert where.shape == target.shape[:3], (where.shape, target.shape)
    d, e = scripted - start, target - start
    values, weights = [], []
    for t in range(len(where)):
        m = where[t]
        den = float(d[t][m].square().sum()) if m.any() else 0.0
        values.append(round(float((d[t][m] * e[t][m]).sum()) / den, 3) if den > 1e-9 else None)
        weights.append(round(den, 4))
    return values, weights


def trace_summary(rows: list[dict]) -> dict:
    """A run's trace rows (`PerfectPrior.trace`) pooled over frames 1.. and iterations, each
    frame weighed by its change (`shown`): the round trip's, and the target's over the first
    and the second half of the traced iterations."""
    def pooled(pairs):
        pairs = [(a, w) for a, w in pairs if a is not None]
        total = sum(w for _, w in pairs)
        return round(sum(a * w for a, w in pairs) / total, 3) if total > 0 else None

    def frames(row, kind, region):
        return zip(row[kind][region][1:], row[kind][f"{region}_weight"][1:])

    half = (rows[-1]["it"] + 1) / 2 if rows else 0
    out = {}
    for region in ("arrival", "departure"):
        out[f"roundtrip_{region}"] = pooled(f for r in rows for f in frames(r, "roundtrip", region))
        for name, keep in (("first_half", lambda it: it < half), ("second_half", lambda it: it >= half)):
            out[f"target_{region}_{name}"] = pooled(f for r in rows if keep(r["it"]) for f in frames(r, "target", region))
    return out
