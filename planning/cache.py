"""JAX's persistent compilation cache, so a new process skips compiling the solvers.

Global JAX state: for applications (the CLI, benchmarks), not for library code. What it saves
is measured in docs/planning-notes.md.
"""

from __future__ import annotations

import os


def enable_compilation_cache(directory: str | None = None) -> str:
    """Keep JAX's compiled solvers on disk under ``directory``.

    Returns the directory used (default ``$XDG_CACHE_HOME/chord-robot/jax``).
    """
    import jax

    if directory is None:
        root = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
        directory = os.path.join(root, "chord-robot", "jax")
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return directory
