"""`recsql report` opened in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) through Selenium, with the network cut off.
Every image must have loaded, the console must hold no error, and the screenshot is
written where docs/report.png is refreshed from (RECSQL_SCREENSHOT names the file).

Without Chromium these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

import recsql
from tests.conftest import _missing

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--window-size=1100,1400",
)


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        _missing("the report's browser test needs Chromium: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("the report's browser test needs selenium: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, ml100k):
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("report")
    engine = recsql.connect(f"sqlite:///{folder / 'recsql.db'}")
    recsql.import_ratings(engine, ml100k / "u1.base")
    recsql.import_movies(engine, ml100k / "u.item")
    recsql.train(engine, test_file=ml100k / "u1.test", samples=0)
    recsql.train(engine, test_file=ml100k / "u1.test")
    # A split of the active model 2 against model 1, with what users did: the online section.
    recsql.split_traffic(engine, 2, 1, share=0.5)
    rng = np.random.default_rng(0)
    shown = pd.DataFrame({"kind": "shown", "user_id": np.arange(1, 401), "movie_id": 50, "rank": 1})
    shown["model_id"] = np.where(recsql.list_splits(engine)[0].variants(shown.user_id) == "B", 1, 2)
    clicked = shown[rng.random(400) < np.where(shown.model_id == 2, 0.3, 0.1)][["user_id", "movie_id"]]
    recsql.log_events(engine, pd.concat([shown, clicked.assign(kind="clicked")], ignore_index=True))
    path = recsql.write_report(engine, folder / "report.html")
    online = recsql.online_metrics(engine)
    engine.dispose()
    return path, online


def test_the_report_renders_in_chromium_with_every_image_and_no_console_error(report_file, tmp_path):
    report_file, online = report_file
    browser = _browser()
    try:
        browser.get(report_file.as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"
        )
        assert len(images) == 6
        for alt, complete, width, height in images:
            assert complete and width > 100 and height > 100, (alt, width, height)
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        assert browser.title.startswith("recsql model")
        cells = browser.execute_script(
            "return Array.from(document.querySelectorAll('#online-metrics tr')).slice(1)"
            ".map(r => Array.from(r.cells).map(c => c.textContent));"
        )
        assert [row[:5] for row in cells] == [
            [name, str(v.model_id), f"{v.impressions:,}", f"{v.users:,}", f"{v.click_through.rate:.2%}"]
            for name, v in (("A", online.a), ("B", online.b))
        ]
        verdict = browser.find_element("id", "online-verdict").text
        assert verdict.startswith(online.verdict) and "better" in verdict
        shot = os.environ.get("RECSQL_SCREENSHOT") or str(tmp_path / "report.png")
        assert browser.save_screenshot(shot)
        assert os.path.getsize(shot) > 10_000
    finally:
        browser.quit()
