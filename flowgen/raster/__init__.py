"""Differentiable Gaussian rasterisation: gsplat on CUDA, our own tile-binned kernels on CPU.

`render` projects 3D Gaussians (EWA) and composites colour/features, alpha and depth in one
pass. CPU backends, each with a plain reference beside it that the tests hold it to:

- fast: `fast_project.py` (numba projection) + `fast.py` (numba tile rasteriser), both with
  hand-written backward passes;
- reference: `project.py` (torch projection) + `reference.py` (pairwise torch compositing),
  differentiated by autograd; for tests and benchmarks.

Modules, in reading order:

- `render`: the entry point, choosing a backend;
- `common`: the compositing constants every backend shares (gsplat's);
- `project`: EWA projection in torch (the reference); `fast_project`: the same in numba;
- `reference`: pairwise torch compositing (the reference); `fast`: the tile-binned numba
  rasteriser, with `tiling` binning Gaussians into tiles and spreading tiles over threads;
- `gsplat_backend`: gsplat's fused CUDA kernels.

See DESIGN.md section 4, "Renderer".
"""

from flowgen.raster.project import Projected, project
from flowgen.raster.render import RenderOutput, render

__all__ = ["Projected", "RenderOutput", "project", "render"]
