"""The web page in a real browser: Playwright drives Debian's Chromium (headless) against a live server.

Upload a synthetic video whose scenes render words, watch it index, ask which scene shows one of
the words, and check the answer (the same as the API gives), the highlighted segment on the score
timeline (the scene with the word), and that clicking it seeks the player there. The page is
saved in the test's temporary folder, and as ``docs/assistant-web.png`` when ``SALOVA_SCREENSHOT=1``
(so that a test run leaves the working tree as it was).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from serve_helpers import live_server, settings_for

from salova.infer import OcrConfig

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "assistant-web.png"
READY_MS = 240_000
ANSWER_MS = 120_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="needs Debian's chromium (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    """The training-free text pipeline (its answers mention what is on screen)."""
    settings = settings_for(tmp_path_factory.mktemp("text-server"), "text-rag")
    assistant = replace(settings.assistant, ocr=OcrConfig(frames_per_segment=2), max_new_tokens=24)
    with live_server(replace(settings, assistant=assistant)) as server:
        yield server


def test_upload_ask_and_seek_in_the_browser(text_server, text_video, tmp_path):
    path, truth = text_video
    screenshot = DOCS_SCREENSHOT if os.environ.get("SALOVA_SCREENSHOT") == "1" else tmp_path / "assistant-web.png"
    scene = next(s for s in truth.scenes if s.text)
    question = f"Which scene shows the word {scene.text}?"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        try:
            page = browser.new_page()
            page.goto(text_server.url + "/")
            page.set_input_files("#file", str(path))
            page.click("#upload")
            page.wait_for_selector("#ask:not([disabled])", timeout=READY_MS)
            assert page.inner_text("#status").startswith(f"Ready: {path.name}, {len(truth.scenes)} segments")
            assert page.locator("#timeline .segment").count() == len(truth.scenes)

            page.fill("#question", question)
            page.click("#ask")
            page.wait_for_function(
                "document.getElementById('answer-pipeline').textContent === 'text-rag'", timeout=ANSWER_MS
            )
            shown = page.inner_text("#answer")
            video_id = page.input_value("#videos")
            used = page.eval_on_selector_all(
                "#timeline .segment.used", "nodes => nodes.map(n => [Number(n.dataset.start), Number(n.dataset.end)])"
            )
            tallest = page.eval_on_selector_all(
                "#timeline .segment",
                "nodes => nodes.map(n => [parseFloat(n.style.height), Number(n.dataset.start)])"
                ".sort((a, b) => b[0] - a[0])[0][1]",
            )
            assert tallest == pytest.approx(scene.start_sec, abs=0.5)

            middle = (scene.start_sec + scene.end_sec) / 2
            (bar,) = [
                bar
                for bar in page.query_selector_all("#timeline .segment.used")
                if float(bar.get_attribute("data-start")) <= middle < float(bar.get_attribute("data-end"))
            ]
            bar.click()
            page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {scene.start_sec}) < 0.6")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    with text_server.client() as client:
        api = client.post(f"/v1/videos/{video_id}/ask", json={"question": question, "top_k": 5}).json()
    assert shown == (api["answer"] or "(empty answer)")
    assert [[s["start"], s["end"]] for s in api["segments"]] == used
    assert screenshot.stat().st_size > 10_000
