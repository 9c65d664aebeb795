"""`chord-robot view` in a real browser: headless Chromium loads the page and the scene is drawn.

The browser is driven over the DevTools protocol (a websocket, with the `websockets` package
viser already depends on) rather than with ``--screenshot``/``--dump-dom``: the test waits for
a condition (the slider is in the page, the scene is on the canvas) instead of a fixed virtual
time budget, which with software WebGL made ``--dump-dom`` take 20-50 s. Nothing is installed at
run time; without /usr/bin/chromium (Debian's ``chromium`` package) the browser tests skip.
"""

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from chord_robot.app.views.viewer import Viewer
from tests.chord_robot.app.test_render_plan import OFFSET, make_plan, translation_flow

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium package (/usr/bin/chromium) for the browser test",
)
W, H = 1200, 800
PANEL = (slice(0, 260), slice(850, W))  # viser's GUI panel, top right (rows, columns)
NOTICE = (slice(0, 170), slice(0, 330))  # viser's "software WebGL" notification, top left
GIZMO = (slice(H - 90, H), slice(0, 90))  # the axes gizmo, bottom left
DOM_PROBE = """(() => {
  const slider = document.querySelector('[role="slider"]');
  return {labels: [...document.querySelectorAll('label')].map(l => l.textContent.trim()),
          slider: slider ? {min: slider.getAttribute('aria-valuemin'), max: slider.getAttribute('aria-valuemax')} : null,
          canvas: document.querySelectorAll('canvas').length};
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli() -> list[str]:
    """How to run `chord-robot view`: the CLI entry point in a fresh interpreter."""
    return [sys.executable, "-m", "chord_robot.app.cli", "view"]


def _start_view(args: list[str], log: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start the viewer; wait (bounded) for the URL it prints."""
    out = log.open("w")
    proc = subprocess.Popen(_cli() + args, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"viewer at (http://[^\s;]+)", log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait(10)
    pytest.fail(f"the viewer did not start within {timeout} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> int:
    """Ctrl-C, as a user would; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


class _DevTools:
    """Headless Chromium on one page, driven over the DevTools protocol."""

    def __init__(self, url: str, profile: Path, timeout: float = 30.0) -> None:
        from websockets.sync.client import connect

        port = _free_port()
        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-unsafe-swiftshader",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--window-size={W},{H}",
                f"--remote-debugging-port={port}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        ws_url = None
        while ws_url is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                ws_url = pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                pass
            if ws_url is None:
                time.sleep(0.2)
        if ws_url is None:
            self.close()
            pytest.fail(f"chromium's DevTools did not answer within {timeout} s")
        self.ws = connect(ws_url, max_size=None, open_timeout=10)
        self._id = 0
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=W,
            height=H,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")

    def screenshot(self) -> np.ndarray:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return iio.imread(io.BytesIO(data))[..., :3]

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # chromium and the helpers it started
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _scene_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of drawn content: neither the white background nor the light grey grid lines,
    outside the GUI panel."""
    x = img.astype(int)
    lum = x.mean(-1)
    colourful = x.max(-1) - x.min(-1) > 40
    mask = colourful | (lum < 175)
    for region in (PANEL, NOTICE, GIZMO):
        mask[region] = False
    return mask


def _palette_pixels(img: np.ndarray, rgb, tol: int = 40) -> int:
    """How many pixels of the 3D view (not the GUI) are within ``tol`` of a colour (0-255)."""
    near = np.abs(img.astype(int) - np.asarray(rgb)).max(-1) <= tol
    for region in (PANEL, NOTICE, GIZMO):
        near[region] = False
    return int(near.sum())


def _dark_pixels(img: np.ndarray) -> int:
    """How many pixels of the 3D view are near black (the Panda's joint caps and fingertips;
    the points, grid and paths are all lighter)."""
    dark = img.astype(int).max(-1) < 70
    for region in (PANEL, NOTICE, GIZMO):
        dark[region] = False
    return int(dark.sum())


def _load_page(url: str, tmp_path: Path, done, timeout: float = 40.0):
    """Open ``url``; poll (bounded) until ``done(dom, image)``; the last DOM facts and screenshot."""
    browser = _DevTools(url, tmp_path / "chromium-profile")
    try:
        start = time.monotonic()
        dom, img = None, None
        while time.monotonic() < start + timeout:
            dom = browser.evaluate(DOM_PROBE)
            if dom and dom["slider"] is not None:
                img = browser.screenshot()
                if done(dom, img):
                    break
            time.sleep(0.5)
        print(f"page ready after {time.monotonic() - start:.1f} s")
        if img is not None:
            iio.imwrite(tmp_path / "screenshot.png", img)
        return dom, img
    finally:
        browser.close()


BOX_BLUE = (31, 120, 181)  # plan_render.PALETTE[0], the moving object
TABLE_GREY = (158, 158, 153)  # plan_render.STATIC_COLOR
MANIPULATE_ORANGE = (255, 140, 20)  # viewer.SEGMENT_COLORS["manipulate"]


@needs_chromium
def test_view_flow_in_headless_chromium(tmp_path):
    translation_flow(num_frames=21, offset=OFFSET).save(tmp_path / "f.zarr")
    t0 = time.monotonic()
    proc, url = _start_view(
        [str(tmp_path / "f.zarr"), "--port", str(_free_port())], tmp_path / "view.log"
    )
    try:
        assert url.startswith("http://127.0.0.1:")  # localhost unless asked otherwise
        dom, img = _load_page(url, tmp_path, lambda d, im: _palette_pixels(im, BOX_BLUE) > 300)
        print(f"time to first frame: {time.monotonic() - t0:.1f} s")
    finally:
        code = _stop(proc)
    assert dom is not None and img is not None, "the page never showed the GUI"
    assert "Frame" in dom["labels"] and "Play" in dom["labels"]
    assert dom["slider"] == {"min": "0", "max": "20"}  # one position per flow frame
    assert dom["canvas"] >= 1
    assert img.shape == (H, W, 3)
    assert _palette_pixels(img, BOX_BLUE) > 300  # the moving box
    assert _palette_pixels(img, TABLE_GREY, tol=25) > 3000  # the static table's points
    assert _scene_mask(img).mean() > 0.03
    assert _dark_pixels(img) < 100  # no robot without a plan
    assert code == 0  # Ctrl-C stops it cleanly


@needs_chromium
def test_view_plan_in_headless_chromium(tmp_path):
    make_plan().save(tmp_path / "p.zarr")
    translation_flow(num_frames=21, offset=OFFSET).save(tmp_path / "f.zarr")
    proc, url = _start_view(
        [str(tmp_path / "p.zarr"), "--flow", str(tmp_path / "f.zarr"), "--port", str(_free_port())],
        tmp_path / "view.log",
    )
    try:
        dom, img = _load_page(
            url,
            tmp_path,
            lambda d, im: (
                _palette_pixels(im, MANIPULATE_ORANGE) > 30
                and _palette_pixels(im, BOX_BLUE) > 300
                and _dark_pixels(im) > 500
            ),
        )
    finally:
        _stop(proc)
    assert dom is not None and img is not None, "the page never showed the GUI"
    assert "Frame" in dom["labels"]
    assert dom["slider"] == {"min": "0", "max": "40"}  # 2 s of plan at 1 / dt = 20 fps
    assert _palette_pixels(img, BOX_BLUE) > 300
    assert _palette_pixels(img, MANIPULATE_ORANGE) > 30  # the end-effector path
    assert _dark_pixels(img) > 500  # the robot's black joint caps (the flow alone has none)


def test_viewer_state_follows_the_time(tmp_path):
    """Without a browser: at each frame the clouds hold the flow's points and the robot's TCP is
    where PyBullet puts it for the plan's joints at the plan's base."""
    from sim import world as simworld

    base = np.array([np.cos(0.2), 0, 0, np.sin(0.2), -0.1, 0.05, 0.0])  # yawed 0.4 rad, shifted
    plan = make_plan(base=tuple(base))
    flow = translation_flow(num_frames=21, offset=OFFSET)
    viewer = Viewer(flow, plan, port=0)
    try:
        assert viewer.url.startswith("http://127.0.0.1:") and not viewer.url.endswith(":0")
        assert viewer.timeline.num_frames == 41
        world = simworld.create(direct=True, table=False)
        panda = simworld.load_panda(world, base_pose=base)
        for f, flow_frame in (
            (0, 0),
            (20, 10),
            (40, 20),
        ):  # t = 0, 1, 2 s; manipulate = steps 10..30
            viewer.show(f)
            np.testing.assert_allclose(
                viewer.clouds["object"].points,
                flow.objects["object"].trajectories[flow_frame],
                atol=1e-6,
            )
            np.testing.assert_allclose(
                viewer.clouds["table"].points, flow.objects["table"].points, atol=1e-6
            )
            simworld.set_panda_state(world, panda, plan.joints[f], 0.08 * plan.gripper[f])
            expect = simworld.pose_to_matrix(simworld.tcp_pose(world, panda))
            tcp = simworld.pose_to_matrix(base) @ viewer.urdf.get_transform(
                "panda_grasptarget", "panda_link0"
            )
            np.testing.assert_allclose(tcp, expect, atol=1e-5)
            np.testing.assert_allclose(viewer.urdf.cfg[7], 0.04 * plan.gripper[f], atol=1e-9)
        world.close()
        viewer.show(0)
        viewer.slider.value = 0
        viewer.play.value = True  # the playback thread advances the slider at 20 fps
        deadline = time.monotonic() + 5.0
        while viewer.slider.value < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        viewer.play.value = False
        time.sleep(0.2)  # let a step already under way finish
        assert viewer.slider.value >= 3
        assert viewer.time_box.value == pytest.approx(
            viewer.timeline.times[viewer.slider.value], abs=1e-3
        )
    finally:
        viewer.close()


def test_open_viewer_refuses_bad_input(tmp_path):
    from chord_robot.app.views.viewer import open_viewer
    from chord_robot.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a FLOW.zarr nor a PLAN.zarr"):
        open_viewer(tmp_path / "empty", port=0)
    make_plan().save(tmp_path / "p.zarr")
    flow = translation_flow(num_frames=21)
    flow.__class__({"lamp": flow.objects["object"]}, "x").save(tmp_path / "f.zarr")
    with pytest.raises(InputError, match="does not hold"):
        open_viewer(tmp_path / "p.zarr", tmp_path / "f.zarr", port=0)
