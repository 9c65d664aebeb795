"""Which way does a trained prior push a laptop's lid when the lid can only turn about its hinge?

    PRIOR=DIR python scripts/hinge_sds.py SCENE_DIR SCENE "PROMPT" [ITERATIONS]

A diagnostic of the distillation (docs/trained-prior.md), not the method: the flow model of the
scan (`flowgen.model.build_model`, the cpu preset of the wan prior at its clips' size and frames) is
posed by one parameter per frame, the lid's hinge angle, the lid's Gaussians turned rigidly
about the true hinge (from `scripts/prior_distill.py scenes`), and the same SDS prior as
`chord-robot flow --prior wan` (cameras, noise, tau and guidance schedules) gives the angles
their gradient; Adam (learning rate $LR, default 0.02 rad) follows it. $SMOOTH (default 10)
weighs the squared second differences of the angles (the VAE compresses 4 frames into one
latent frame, and without it the angles zig-zag within a latent frame). Prints the angles
every 25 iterations and at the end (degrees, positive opens).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(scene_dir: Path, scene: str, prompt: str, iterations: int) -> list[float]:
    from chord_robot.app.flowconfig import flow_config
    from chord_robot.app.flowrun import prepare_flow
    from flowgen.model import build_model
    from flowgen.objective import _static_splats
    from flowgen.priors.sds_prior import SdsPrior
    from flowgen.priors.shipped import clip_size
    from flowgen.priors.wan import load_wan_prior
    from flowgen.quat import quat_multiply
    from flowgen.shading import albedo, gaussian_normals, shade
    from flowgen.splats import Splats, render_splats
    from sim import assets

    torch.set_num_threads(1)
    info = json.loads((scene_dir / "scenes.json").read_text())[scene]
    if info["kind"] != "laptop":
        sys.exit("the hinge diagnostic is for laptop scenes")
    pose, spec = np.asarray(info["base_pose"]), assets.LaptopSpec(**info["spec"])
    num_frames, height, width = clip_size(os.environ["PRIOR"])  # the prior's own clips
    config = flow_config("cpu", "wan", frames=num_frames, iters=iterations, size=(width, height))
    inputs = prepare_flow(scene_dir / f"{scene}.ply", config=config, task=prompt,
                          model=os.environ["PRIOR"], allow_cpu=True)
    config = inputs.config
    model = build_model(inputs.scene, config)
    obj = next(o for o in model.moving if o.name == "laptop")
    means = obj.rest.means.detach()
    local = (means.numpy() - pose[:3, 3]) @ pose[:3, :3]
    base = (np.abs(local[:, 0]) <= spec.depth / 2 + 0.004) & (np.abs(local[:, 2]) <= spec.base_thickness / 2 + 0.0005)
    lid = torch.from_numpy(~base)[:, None]
    hinge = pose @ assets.laptop_hinge(spec)
    axis = torch.tensor(hinge[:3, :3] @ assets.LAPTOP_HINGE_AXIS, dtype=torch.float32)  # + opens
    origin = torch.tensor(hinge[:3, 3], dtype=torch.float32)
    wan = load_wan_prior(inputs.model_dir, config.wan.variant, prompt=prompt, config=config.wan)
    prior = SdsPrior(wan, means.numpy(), num_frames, height, width, 1, iterations, config.wan.cameras, config.seed)
    with torch.no_grad():
        static = _static_splats(model)
        colour = shade(model, albedo(obj.albedo_logit), gaussian_normals(obj.rest.quats)).expand_as(means)
        scales, opacity = obj.log_scales.exp(), torch.sigmoid(obj.opacity_logit)
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    theta = torch.zeros(num_frames - 1, requires_grad=True)  # frames 1.., radians
    optimiser = torch.optim.Adam([theta], lr=float(os.environ.get("LR", "0.02")))
    smooth = float(os.environ.get("SMOOTH", "10"))
    start = time.time()
    for it in range(iterations):
        (view,) = prior.views([None], 1.0, it)
        angles = torch.cat([torch.zeros(1), theta])
        frames, alphas = [], []
        for a in angles:
            rot = torch.eye(3) + torch.sin(a) * cross + (1 - torch.cos(a)) * (cross @ cross)
            m = torch.where(lid, (means - origin) @ rot.T + origin, means)
            q_turn = torch.cat([torch.cos(a / 2)[None], torch.sin(a / 2) * axis]).expand(len(means), 4)
            q = torch.where(lid, quat_multiply(q_turn, obj.rest.quats), obj.rest.quats)
            zeros = torch.zeros_like(m)
            parts = [Splats(m, q, scales, opacity, torch.cat([colour, zeros, zeros], -1)), *static]
            splats = Splats(*(torch.cat([getattr(p, k) for p in parts]) for k in
                              ("means", "quats", "scales", "opacities", "features")))
            image = render_splats(splats, view.camera, None)
            frames.append(image.features[..., :3])
            alphas.append(image.alpha)
        loss = prior.loss(view, torch.stack(frames), torch.stack(alphas), 1.0)["sds"]
        loss = loss + smooth * (angles[2:] - 2 * angles[1:-1] + angles[:-2]).square().sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if it % 25 == 0 or it == iterations - 1:
            print(f"iteration {it}: tau {wan.tau(it, iterations):.3f}, angles "
                  f"{np.degrees(theta.detach().double().numpy()).round(1).tolist()} deg ({time.time() - start:.0f} s)", flush=True)
    final = np.degrees(theta.detach().double().numpy()).round(1).tolist()
    print(json.dumps({"scene": scene, "prompt": prompt, "angles_deg": [0.0, *final]}))
    return final


if __name__ == "__main__":
    if len(sys.argv) < 4 or "PRIOR" not in os.environ:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 150)
