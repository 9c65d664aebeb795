"""Hostile scans: every loader fed truncated, bit-flipped, inflated, NaN-laden, out-of-range and
garbage files (issue #18). `cases` writes them; `run_cases` loads each in this process under a
per-case alarm and reports what happened; run as a script it is the worker of the test (a
separate process with an address-space limit, so a loader that would allocate without bound
fails there instead of taking the machine).

    python -m tests.chord_robot.fuzz_scans DIR OUT.json [seed]
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np

FORMATS = ("mesh-ply", "mesh-ply-labelled", "points-ply", "points-ply-labelled", "gaussians-ply",
           "gaussians-ply-labelled", "obj", "glb", "manifest")
SECONDS = 10
"""Longest a load may take."""


def _mutations(data: bytes, rng: np.random.Generator, name: str) -> dict[str, bytes]:
    """Mutated copies of one file's bytes, keyed by what was done."""
    out: dict[str, bytes] = {}
    n = len(data)
    for frac in (0.0, 0.01, 0.3, 0.7, 0.99):
        out[f"truncated at {frac:.0%}"] = data[: int(n * frac)]
    head = min(n, 400)
    for i in range(6):
        b = bytearray(data)
        for _ in range(3):
            if head:
                b[int(rng.integers(0, head))] ^= 1 << int(rng.integers(0, 8))
        out[f"header bit flips {i}"] = bytes(b)
    for i in range(6):
        b = bytearray(data)
        for _ in range(20):
            if n:
                b[int(rng.integers(0, n))] = int(rng.integers(0, 256))
        out[f"body byte flips {i}"] = bytes(b)
    text = data[:4096]
    if b"element" in text:  # PLY: inflated element counts
        for factor in ("1000x", "2**40", "-1"):
            def grow(m: re.Match, factor=factor) -> bytes:
                count = int(m.group(2))
                new = {"1000x": count * 1000, "2**40": 2**40, "-1": -1}[factor]
                return m.group(1) + str(new).encode()
            out[f"element counts {factor}"] = re.sub(rb"(element \w+ )(\d+)", grow, data[:4096], count=2) + data[4096:]
    if name.endswith(".ply") and b"binary_little_endian" in text:  # NaN / inf in the first floats
        end = data.find(b"end_header\n") + len(b"end_header\n")
        for label, value in (("nan", np.nan), ("inf", np.inf)):
            b = bytearray(data)
            b[end:end + 12] = np.full(3, value, np.float32).tobytes()
            out[f"{label} coordinates"] = bytes(b)
        faces = data.find(b"element face")
        if faces >= 0:  # out-of-range face indices: the last face's last index
            b = bytearray(data)
            b[-4:] = np.array([2**31 - 1], np.int32).tobytes()
            out["face index out of range"] = bytes(b)
            b[-4:] = np.array([-5], np.int32).tobytes()
            out["negative face index"] = bytes(b)
    if name.endswith(".obj"):
        out["nan vertices"] = data.replace(b"v ", b"v nan inf ", 5)
        out["face index out of range"] = data + b"\nf 1 2 999999999\n"
        out["negative face index"] = data + b"\nf -999999 1 2\n"
    if name.endswith(".json"):
        out["labels not a mapping"] = b"[1, 2, 3]"
        out["labels with huge key"] = b'{"99999999999999999999": "x", "0": "table"}'
        out["labels with non-string names"] = b'{"0": 5, "1": null}'
    if name.endswith(".toml"):
        out["manifest missing file"] = data + b'\n[[object]]\nname = "ghost"\nfile = "nope.ply"\n'
        out["manifest wrong types"] = b'[[object]]\nname = 5\nfile = 7\n'
        out["manifest bad pose"] = re.sub(rb"pose = \[[^\]]*\]", b'pose = [0, 0, "x", 1, 0, 0, 0]', data, count=1)
        out["manifest zero quaternion"] = re.sub(rb"pose = \[[^\]]*\]", b"pose = [0, 0, 0, 0, 0, 0, 0]", data,
                                                 count=1)
        out["manifest static not a bool"] = re.sub(rb"file = ", b'static = "yes"\nfile = ', data, count=1)
    out["garbage"] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    out["empty"] = b""
    return out


def cases(root: Path, seed: int = 0) -> list[dict]:
    """Write every case under ``root``: per format, per file of its scan, per mutation, a copy
    of the scan with that one file mutated. Returns [{"format", "file", "mutation", "path"}]."""
    from chord_robot import synth

    rng = np.random.default_rng(seed)
    out = []
    for fmt in FORMATS:
        clean = root / fmt / "clean"
        scan = synth.write_scan(clean, fmt, synth.tabletop(0), num_points=3000)
        files = sorted(p for p in clean.rglob("*") if p.is_file())
        out.append({"format": fmt, "file": "-", "mutation": "none", "path": str(scan)})
        for f in files:
            for i, (what, data) in enumerate(_mutations(f.read_bytes(), rng, f.name).items()):
                case = root / fmt / f"{f.name}-{i}"
                shutil.copytree(clean, case)
                (case / f.relative_to(clean)).write_bytes(data)
                out.append({"format": fmt, "file": f.name, "mutation": what,
                            "path": str(case / scan.relative_to(clean))})
    return out


class _Timeout(Exception):
    pass


def run_cases(items: list[dict]) -> list[dict]:
    """Load each case; outcome "loaded" (a scene with finite points), "refused" (InputError, one
    line), "crash" (anything else), "timeout" or "memory"."""
    from chord_robot.app.scenes import load_scene
    from chord_robot.errors import InputError

    def alarm(signum, frame):
        raise _Timeout

    signal.signal(signal.SIGALRM, alarm)
    for item in items:  # imports and compilation once, outside the timed loads
        if item["mutation"] == "none":
            load_scene(item["path"])
    results = []
    for item in items:
        start = time.perf_counter()
        signal.alarm(SECONDS)
        try:
            scene = load_scene(item["path"])
            pts = np.concatenate([o.points for o in scene.objects.values()])
            outcome, detail = ("loaded", f"{len(scene.objects)} objects") if np.isfinite(pts).all() \
                else ("crash", "non-finite points loaded")
        except InputError as e:
            message = str(e)
            outcome, detail = ("refused", message) if "\n" not in message.strip() else ("crash", "multi-line: " + message)
        except _Timeout:
            outcome, detail = "timeout", f"over {SECONDS} s"
        except MemoryError:
            outcome, detail = "memory", "MemoryError"
        except Exception as e:  # noqa: BLE001 (what the fuzzing looks for)
            outcome, detail = "crash", f"{type(e).__name__}: {e}"[:300]
        finally:
            signal.alarm(0)
        results.append({**item, "outcome": outcome, "detail": detail,
                        "seconds": round(time.perf_counter() - start, 3)})
    return results


if __name__ == "__main__":
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a few GB at most
    root, report = Path(sys.argv[1]), Path(sys.argv[2])
    items = cases(root, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    report.write_text(json.dumps(run_cases(items), indent=1))
