"""Priors that guide the 4D optimisation: a given video (`video`) or a video model (`wan`).

Modules, in reading order:

- `video_io`: guidance videos read and fitted to the run (size, camera, frame count);
  `video`: the video prior, a photometric and silhouette loss against those videos.
- `cameras`: cameras sampled around the scene each iteration (SDS prior).
- `tau`: the noise-level (tau) schedule and the guidance annealing, pure functions of the
  iteration.
- `sds`: rectified-flow score distillation as a function of (latents, tau, embeddings).
- `wan`: the Wan 2.2 prior (a package: config, weights, encoders, the prior).
- `sds_prior`: the SDS prior of the optimisation loop, Wan judging videos rendered from
  sampled cameras.
- `train`: training a small video prior of the Wan 2.2 layout (the shipped one).

Importing this package imports nothing; torch is loaded by the modules that need it.
"""
