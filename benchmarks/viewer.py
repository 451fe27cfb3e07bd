"""Frames per second of the play.py viewer, measured in the page (chromium), at a model size (default `tiny`).

    python benchmarks/viewer.py                          # tiny, Breakout, K=2 H=1 (play.py's default), agent in the real game and in the dream
    python benchmarks/viewer.py --screenshot docs/img/viewer.png

The model is randomly initialised (speed does not depend on training). The page's own fps counter (steps
per second over the last 16 steps while running) is read after `--seconds` of agent play per mode. On a
shared machine the wall-clock fps says how busy it was; the server's CPU time per step (this process:
the model, the emulator, the PNGs) says what one free core would give.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BROWSER_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1250")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def start_server(size: str, game: str, beam_width: int, horizon: int, out: Path):
    import torch
    import uvicorn

    from jowa.config import load_size
    from jowa.model.world_model import WorldActionModel
    from jowa.planning import BeamSearch
    from jowa.tokenizer import Tokenizer
    from jowa.viewer.server import Viewer, build_app
    from jowa.viewer.session import PlaySession

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)  # play.py's default
    sizes = load_size(size)
    sizes.tokenizer.lpips_net = "none"
    model, tokenizer = WorldActionModel(sizes.world_model).eval(), Tokenizer(sizes.tokenizer).eval()
    viewer = Viewer(PlaySession(model, tokenizer, game, BeamSearch(beam_width, horizon)), out, max_fps=60)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(viewer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return viewer, server, thread, f"http://127.0.0.1:{port}/"


def browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("-K", type=int, default=2)
    parser.add_argument("-H", type=int, default=1)  # play.py's default
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        viewer, server, thread, url = start_server(args.size, args.game, args.K, args.H, Path(tmp))
        driver = browser(Path(tmp) / "profile")
        try:
            driver.get(url)
            while not driver.execute_script("return Number(document.body.dataset.updates || 0)"):
                time.sleep(0.05)
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys("a")
            rows = []
            for mode, key in (("real game", "r"), ("dream", "d")):
                body.send_keys(key)
                time.sleep(1.0)
                steps, cpu = len(viewer.session.recording), time.process_time()
                body.send_keys("p")
                time.sleep(args.seconds)
                body.send_keys("p")
                time.sleep(1.0)
                while viewer.lock.locked():  # the step in flight when paused
                    time.sleep(0.1)
                cpu_ms = 1000 * (time.process_time() - cpu) / max(1, len(viewer.session.recording) - steps)
                fps = float(driver.find_element(By.ID, "fps").text.split()[0])
                rows.append((mode, fps, cpu_ms, dict(viewer.session.timings.as_dict())))
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.screenshot))
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(timeout=30)  # the lifespan's cleanup closes the emulator
    load = os.getloadavg()[0]
    print(f"viewer fps: size {args.size}, {args.game}, beam search K={args.K} H={args.H}, agent playing, "
          f"1 torch thread, {cpu_name()} ({os.cpu_count()} cores, load average {load:.1f})")
    print("| mode | fps (page counter) | server CPU ms per step | fps with one free core (1000 / CPU ms) "
          "| last step's wall ms: emulator / imagine / planner / decode |")
    print("| --- | ---: | ---: | ---: | --- |")
    for mode, fps, cpu_ms, t in rows:
        print(f"| {mode} | {fps:.1f} | {cpu_ms:.0f} | {1000 / cpu_ms:.1f} | "
              f"{t['env_ms']} / {t['imagine_ms']} / {t['plan_ms']} / {t['decode_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
