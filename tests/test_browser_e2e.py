"""End to end in a real browser: start `streamlit run dashboard/app.py`, and, as a new user would,
train on the demo cohort with the page's defaults, watch the training, open every results tab,
score a patient. Writes the screenshots the README shows to docs/screenshots/.

Needs Debian's chromium at /usr/bin/chromium (or $DICE_CHROMIUM); about 2-3 minutes on 2 cores.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("DICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TRAINING_TIMEOUT_MS = 8 * 60 * 1000
RESULT_TABS = ["Patient map", "Significance", "Risk levels", "Cluster profiles", "DICE vs baselines",
               "Fairness & calibration"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The app as users start it, with its own runs and models folders."""
    port = free_port()
    env = {**os.environ, "DICE_RUNS_DIR": str(tmp_path / "runs"), "DICE_MODELS_DIR": str(tmp_path / "models")}
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
                                str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise AssertionError((tmp_path / "server.log").read_text())
            time.sleep(0.5)
    yield url, tmp_path
    process.terminate()
    process.wait(timeout=30)
    log.close()


def settle(page, timeout_s: float = 120):
    """Wait until the script has finished running (Streamlit's 'running' indicator gone a while)."""
    deadline, calm = time.time() + timeout_s, 0
    while time.time() < deadline and calm < 3:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        calm = 0 if running else calm + 1
        time.sleep(0.6)


def plots_drawn(page) -> int:
    """Plotly figures actually rendered in the visible page (an svg or WebGL canvas inside each)."""
    return page.locator(".js-plotly-plot .main-svg").locator("visible=true").count()


def shot(page, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_new_user_trains_on_the_demo_and_explores_the_results(server):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}; set DICE_CHROMIUM")
    url, tmp_path = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1500})
        page.set_default_timeout(60_000)
        page.goto(url)
        expect(page.get_by_role("heading", name="Cohort summary")).to_be_visible()
        settle(page)
        expect(page.get_by_text("600", exact=True).first).to_be_visible()
        shot(page, "cohort")

        # Train with the page's defaults (the quick preset)
        page.get_by_role("link", name="Train", exact=True).click()
        page.get_by_role("button", name="Start training").click()
        expect(page.get_by_text("Leaderboard")).to_be_visible()
        expect(page.locator('[data-testid="stProgress"]').first).to_be_visible()
        expect(page.get_by_text("K=3", exact=False).first).to_be_visible(timeout=240_000)
        page.get_by_text("Leaderboard").scroll_into_view_if_needed()
        time.sleep(1)
        shot(page, "train")

        # the server stays responsive while the worker trains: another page opens at once
        started = time.time()
        page.get_by_role("link", name="Cohort", exact=True).click()
        expect(page.get_by_role("heading", name="Cohort summary")).to_be_visible(timeout=20_000)
        assert time.time() - started < 20
        page.get_by_role("link", name="Train", exact=True).click()

        expect(page.get_by_text("Training finished")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
        settle(page)
        page.get_by_role("link", name="Open the results").click()
        expect(page.get_by_role("tab", name="Search")).to_be_visible()
        settle(page)
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        assert plots_drawn(page) >= 1
        shot(page, "results-search")
        for tab in RESULT_TABS:
            page.get_by_role("tab", name=tab).click()
            time.sleep(1.5)
            assert plots_drawn(page) >= (0 if tab == "DICE vs baselines" else 1), tab
            shot(page, "results-" + tab.lower().replace(" & ", "-").replace(" ", "-"))
        page.get_by_role("tab", name="Patient map").click()
        page.get_by_text("Show the baselines' maps").click()
        settle(page)
        page.locator(".js-plotly-plot").locator("visible=true").last.scroll_into_view_if_needed()
        time.sleep(1)
        assert plots_drawn(page) >= 4  # DICE and the three baselines side by side
        shot(page, "results-baseline-maps")

        page.get_by_role("link", name="Patient", exact=True).click()
        expect(page.get_by_text("Predicted probability of the outcome")).to_be_visible()
        settle(page)
        assert plots_drawn(page) >= 3  # membership, map, trajectories
        shot(page, "patient")
        browser.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()


@pytest.mark.physionet
@pytest.mark.skipif(os.environ.get("DICE_PHYSIONET_E2E") != "1",
                    reason="about 6 minutes: set DICE_PHYSIONET_E2E=1 to run the PhysioNet browser check")
def test_physionet_uploaded_through_the_page_trains_k234_d16_32(server, physionet_path):
    from playwright.sync_api import expect, sync_playwright

    url, tmp_path = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1500})
        page.set_default_timeout(120_000)
        page.goto(url)
        expect(page.get_by_role("heading", name="Cohort summary")).to_be_visible()
        page.get_by_text("PhysioNet 2012 archive").click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(physionet_path))
        settle(page)
        page.get_by_role("button", name="Load PhysioNet 2012").click()
        expect(page.get_by_text("Loaded PhysioNet 2012 set A: 4,000 patients")).to_be_visible(timeout=180_000)
        page.get_by_role("link", name="Train", exact=True).click()
        settle(page)
        page.get_by_role("textbox", name="Sizes of the representation d").fill("16, 32")
        page.get_by_role("textbox", name="Sizes of the representation d").press("Tab")
        page.get_by_role("button", name="Start training").click()
        expect(page.get_by_text("Leaderboard")).to_be_visible()
        for _ in range(3):  # the other pages open quickly while the worker trains
            time.sleep(15)
            started = time.time()
            page.get_by_role("link", name="Cohort", exact=True).click()
            expect(page.get_by_role("heading", name="Cohort summary")).to_be_visible(timeout=30_000)
            assert time.time() - started < 10
            page.get_by_role("link", name="Train", exact=True).click()
        expect(page.get_by_text("Training finished")).to_be_visible(timeout=40 * 60_000)
        page.get_by_role("link", name="Open the results").click()
        expect(page.get_by_role("tab", name="Search")).to_be_visible()
        for tab in RESULT_TABS:
            page.get_by_role("tab", name=tab).click()
            time.sleep(2)
            settle(page)
            assert tab == "DICE vs baselines" or plots_drawn(page) >= 1, tab
        browser.close()
    records = [line for run in (tmp_path / "runs").iterdir() for line in
               (run / "search" / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6  # K in {2, 3, 4} x d in {16, 32}
