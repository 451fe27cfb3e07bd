"""The viewer page in a real browser (Debian's chromium + chromedriver, driven by selenium; `.ci/run` installs
them): it loads, a key press advances the dream, agent mode runs, the planner view has the beam's nodes,
the GIF is written. Skipped only where no browser is installed."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from jowa.config import TokenizerConfig, WorldModelConfig
from jowa.model.world_model import WorldActionModel
from jowa.planning import BeamSearch
from jowa.tokenizer import Tokenizer

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()),
                                reason="no chromium/chromedriver (apt-get install chromium chromium-driver)")
pytest.importorskip("selenium")
BROWSER_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A viewer on a small random model (Breakout, K=2, H=2) served from a thread on 127.0.0.1."""
    import uvicorn

    from jowa.viewer.server import Viewer, build_app
    from jowa.viewer.session import PlaySession

    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1,
                                          lpips_net="none")).eval()
    model = WorldActionModel(WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32,
                                              q_mlp_dim=32, num_q=2)).eval()
    out = tmp_path_factory.mktemp("play")
    viewer = Viewer(PlaySession(model, tokenizer, "Breakout", BeamSearch(2, 2)), out, max_fps=30)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(viewer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield viewer, f"http://127.0.0.1:{port}/", out
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition())


def text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def test_the_page_plays_dreams_plans_and_saves(served, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    viewer, url, out = served
    browser.get(url)
    wait(browser, lambda: browser.execute_script("return Number(document.body.dataset.updates || 0)") >= 1)
    assert text(browser, "mode") == "REAL"
    assert [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "#legend tr")] == \
        ["NOOP", "FIRE", "RIGHT", "LEFT"]
    src = browser.find_element(By.ID, "real").get_attribute("src")
    assert src.startswith("data:image/png;base64,") and len(src) > 100

    # The planner's view: root + K' children + K·K' grandchildren for Breakout at K=2, H=2.
    depths = [int(g.get_attribute("data-depth")) for g in browser.find_elements(By.CSS_SELECTOR, "#tree g.node")]
    assert sorted(depths) == [0, 1, 1, 2, 2, 2, 2]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tree g.node.kept")) == 1 + 2 + 2  # root, beam after each depth
    assert text(browser, "chosen") in ("NOOP", "FIRE", "RIGHT", "LEFT")

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("d")  # dream from the current real context
    wait(browser, lambda: text(browser, "mode") == "DREAM")
    before = browser.find_element(By.ID, "model").get_attribute("src")
    body.send_keys(Keys.ARROW_RIGHT)  # one key press = one imagined step while paused
    wait(browser, lambda: text(browser, "dream-steps") == "1")
    assert viewer.session.dream_memory.actions[-1] == 3  # RIGHT
    assert browser.find_element(By.ID, "model").get_attribute("src") != before
    assert "r̂" in text(browser, "last") and "p(end)" in text(browser, "last")
    assert viewer.session.state.real_steps == 0  # the emulator waited

    body.send_keys("r")  # back to the real game, then let the agent play
    wait(browser, lambda: text(browser, "mode") == "REAL")
    body.send_keys("a")
    wait(browser, lambda: text(browser, "btn-agent") == "Agent: on")
    body.send_keys("p")
    wait(browser, lambda: viewer.session.state.real_steps >= 6)
    body.send_keys("p")
    wait(browser, lambda: text(browser, "btn-run") == "Run")
    steps = viewer.session.state.real_steps
    assert float(text(browser, "fps").split()[0]) >= 0.0
    time.sleep(0.3)
    assert viewer.session.state.real_steps == steps  # paused means paused

    body.send_keys("g")  # save what was played as a GIF, under a name the server chooses
    wait(browser, lambda: text(browser, "message").startswith("saved"))
    (gif,) = out.glob("play_Breakout_*.gif")
    assert gif.read_bytes()[:3] == b"GIF"
    from PIL import Image

    with Image.open(gif) as image:  # real | model side by side, 3× larger, one frame per step shown
        # (the GIF encoder merges identical consecutive frames, e.g. a paddle waiting for its ball)
        assert 2 <= image.n_frames <= len(viewer.session.recording) and image.size == (3 * (2 * 84 + 2), 3 * 84)
    assert len(viewer.session.recording) == 1 + 1 + steps  # one frame per step: the start, the dream step, the agent's
    shot = Path(__import__("os").environ.get("JOWA_VIEWER_SCREENSHOT", tmp_path / "viewer.png"))
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
