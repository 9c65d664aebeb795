"""CHORD 4D generation: scene -> ObjectFlow (DESIGN.md §4).

Layer 1: imports torch, numpy, scipy, trimesh, open3d, numba (diffusers and transformers for
the Wan prior, gsplat on CUDA) and the `chord_robot` contracts, never planning, sim or
hardware. Importing this package imports nothing; the CLI imports its modules lazily.

Entry points::

    from flowgen.config import preset
    from flowgen.model import build_model
    from flowgen.optimize import optimize
    from flowgen.export import export_flow

Modules, in reading order:

- `config`: `FlowConfig`, its regulariser weights and the presets (`paper`, `fast`, `cpu`).
- `segment`: an unlabelled scan split into a support plane and objects.
- `gaussians`: 3D Gaussians from a scene object (3DGS scan, point cloud, sampled mesh);
  `mesh_fit` refines a mesh's Gaussians against renders of the mesh (`mesh_render`).
- `sdf`, `control`: signed distances with part labels, then the control points and the
  near-surface ARAP point set of one object.
- `fenwick`: per-control-point deformations over time in a Fenwick tree (or per frame).
- `quat`: quaternion helpers; `skinning`: linear blend skinning by control points.
- `model`: the 4D model and how it is built; `parts`: which parts touch, rest on a static
  object, and the joints they turn about; `motion`: the model posed at given frames;
  `shading`: albedo and one light.
- `splats`: world-space splats of a frame and their render (over `raster`, the rasteriser).
- `arap`, `losses`: the loss terms; `objective`: the loss of one iteration.
- `schedules`: learning rates and loss weights as pure functions of the iteration;
  `checkpoint`: the running state and its checkpoints; `optimize`: the loop.
- `export`: the optimised model as an ObjectFlow.

Subpackages: `priors` (what guides the motion: a given video or a video model) and `raster`
(differentiable Gaussian rasterisation).
"""

import chord_robot  # noqa: F401  (light; sets torch's OpenMP spin count before torch loads)
