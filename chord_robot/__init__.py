"""chord-robot: robot manipulation from generated 3D object flow (the CHORD method).

Layer 0 (this package's contract modules: scene, camera, flow, plan, errors) depends only on
numpy, trimesh and zarr. Layer 2 (pipeline, evaluate, cli) wires flowgen, planning, sim and
hardware together and imports them lazily.
"""

__version__ = "0.1.0"
