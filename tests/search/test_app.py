"""The Gradio app (demo/app.py): its functions on a tiny real model and index, and the page in a real headless
browser (Debian's chromium driven by selenium): it loads, a text query returns the expected top hit, an uploaded SAR
chip is classified."""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from train.search import ArchiveIndex, build_index

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _load_app_module():
    spec = importlib.util.spec_from_file_location("sar_demo_app", REPO / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, model_dir, chip_folder):
    return build_index(str(model_dir), str(chip_folder), tmp_path_factory.mktemp("app") / "index")


def test_the_app_functions_classify_and_search(model_dir, index_dir, chip_folder, scene_folder):
    import gradio as gr

    app_module = _load_app_module()
    app = app_module.SarApp(str(model_dir), str(index_dir))
    assert app.default_labels() == "aircraft, building, ship, storage tank, vehicle"  # the index's labels
    chip = str(sorted(chip_folder.rglob("*.png"))[0])
    preview, scores = app.classify(chip, "ship, vehicle, aircraft", "a SAR image of a {}.")
    assert set(scores) == {"ship", "vehicle", "aircraft"} and sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert preview.size == (192, 192) and np.asarray(preview).std() > 0
    preview, scores = app.classify(str(scene_folder / "scene_0.tif"), "ship, sea", "a SAR image of {}.")  # float dB
    assert set(scores) == {"ship", "sea"} and np.asarray(preview).std() > 0
    gallery, table = app.search("a SAR image of a ship", None, 4)
    expected = ArchiveIndex(index_dir).search("a SAR image of a ship", k=4)
    assert [row[2] for row in table] == [hit["id"] for hit in expected] and len(gallery) == 4
    for bad in [(None, "ship, car", "{}"), (chip, "ship", "{}"), (chip, "ship, car", "no slot")]:
        with pytest.raises(gr.Error):
            app.classify(*bad)
    with pytest.raises(gr.Error, match="Type a query"):
        app.search("  ", None, 3)


def test_the_app_refuses_an_index_of_another_model(other_model_dir, index_dir):
    result = subprocess.run([sys.executable, str(REPO / "demo" / "app.py"), "--model", str(other_model_dir),
                             "--index", str(index_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "error:" in result.stderr and "different model" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_app(model_dir, index_dir):
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, str(REPO / "demo" / "app.py"), "--model", str(model_dir), "--index",
                                str(index_dir), "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            if process.poll() is not None:
                pytest.fail(f"the app exited: {process.stdout.read()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer within 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"browser test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                    "`apt-get install chromium chromium-driver` (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1800"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_in_a_browser_a_query_returns_the_expected_top_hit_and_a_chip_is_classified(
        served_app, browser, index_dir, chip_folder):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)
    browser.get(served_app)
    query = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#query textarea, #query input"))
    assert "SAR archive search" in browser.title
    assert "18 images" in browser.find_element(By.ID, "index-info").text
    query.send_keys("a SAR image of a ship")
    browser.find_element(By.ID, "search-button").click()
    expected = ArchiveIndex(index_dir).search("a SAR image of a ship", k=12)

    def first_row(driver):  # the rendered table's text: its label, the header row, then the rows, a cell a line
        lines = driver.find_element(By.ID, "hits").text.split("\n")
        header = lines.index("where") if "where" in lines else len(lines)
        return lines[header + 1 : header + 6] if len(lines) >= header + 6 else None

    cells = wait.until(first_row)
    assert cells[0] == "1" and cells[2] == expected[0]["id"] and cells[3] == expected[0]["label"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gallery img")) == 12

    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Zero-shot')]").click()
    chip = sorted(chip_folder.rglob("*.png"))[0]
    upload = wait.until(lambda d: [el for el in d.find_elements(By.CSS_SELECTOR, "input[type=file]")
                                   if el.get_attribute("accept") and ".tif" in el.get_attribute("accept")])
    upload[-1].send_keys(str(chip))
    time.sleep(1)
    labels = browser.find_element(By.CSS_SELECTOR, "#labels textarea, #labels input")
    labels.clear()
    labels.send_keys("ship, vehicle, aircraft")
    browser.find_element(By.ID, "classify-button").click()
    text = wait.until(lambda d: "%" in d.find_element(By.ID, "scores").text and d.find_element(By.ID, "scores").text)
    assert {"ship", "vehicle", "aircraft"} <= set(text.split("\n"))
