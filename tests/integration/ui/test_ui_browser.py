"""Acceptance 1 of issue 18: the exchange browser in real headless Chromium.

A study of two series (2 CR instances, 20 CT instances made here with pydicom, each image
different) is published through the whole gateway; the patient search finds the patient, the
patient page lists the study with one thumbnail per series, each loaded (naturalWidth > 0), the
viewer scrolls through the 20 CT images (wheel and keys) and the displayed image changes, and
the browser console shows no error. Screenshots go to ``tests/output/ui/`` (two are copied to
``docs/`` for the README). Also: first paint of a patient page listing 50 studies, from the
browser's paint timing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("selenium", reason="selenium (dev extra) drives Chromium here")

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from gateway.app import Gateway
from tests.integration.ui.conftest import (
    copy_to_docs,
    feed,
    publish_study,
    start_gateway,
)


def _errors(browser: Any) -> list[dict[str, Any]]:
    return [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def _all_loaded(browser: Any, selector: str) -> list[int]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(i => (i.complete ? i.naturalWidth : -1));",
        selector,
    )


def _image_digest(browser: Any) -> str:
    """A digest of the pixels the viewer shows (drawn into a canvas: same origin)."""
    return browser.execute_script(
        "const i = document.getElementById('view');"
        "const c = document.createElement('canvas'); c.width = i.naturalWidth;"
        "c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0);"
        "const d = g.getImageData(0, 0, c.width, c.height).data; let h = 0;"
        "for (let k = 0; k < d.length; k += 4) { h = (h * 31 + d[k]) >>> 0; } return String(h);"
    )


def _view_ready(browser: Any) -> bool:
    return bool(
        browser.execute_script(
            "const i = document.getElementById('view'); return i.complete && i.naturalWidth > 0;"
        )
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    gw = start_gateway(tmp_path)
    try:
        yield gw
    finally:
        gw.stop()


def test_search_patient_thumbnails_viewer_in_chromium(
    gateway: Gateway, tmp_path: Path, browser: Any, artefacts: Path
) -> None:
    cx = feed(gateway, "UI-0001", family="Lovelace", given="Ada")
    study = publish_study(gateway, tmp_path / "study", "UI-0001")
    base = gateway.base_url
    wait = WebDriverWait(browser, 30)

    browser.get(base + "/ui/")  # open: loopback listener, no accounts file
    assert browser.find_element(By.ID, "recent").is_displayed()
    browser.save_screenshot(str(artefacts / "dashboard.png"))

    # search by name from the header form, then follow the match
    box = browser.find_element(By.ID, "q")
    box.send_keys("lovelace")
    box.submit()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#patients a"))
    links = browser.find_elements(By.CSS_SELECTOR, "#patients a")
    assert [a.text for a in links] == [cx]
    for by_id in ("UI-0001", cx):  # the bare id and the CX find it too
        browser.get(f"{base}/ui/patients?q={quote(by_id, safe='')}")
        assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#patients a")] == [cx]
    links = browser.find_elements(By.CSS_SELECTOR, "#patients a")
    links[0].click()

    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"section[data-study='{study}']"))
    thumbs = f"section[data-study='{study}'] img.thumb"
    wait.until(lambda b: all(w > 0 for w in _all_loaded(b, thumbs)))
    widths = _all_loaded(browser, thumbs)
    assert len(widths) == 2 and all(w > 0 for w in widths)  # one per series, each loaded
    shot = artefacts / "patient.png"
    browser.save_screenshot(str(shot))
    copy_to_docs(shot, "ui-patient.png")
    browser.set_window_size(768, 1024)  # a tablet: nothing wider than the window
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"
    )
    browser.save_screenshot(str(artefacts / "patient-tablet.png"))
    browser.set_window_size(1280, 900)

    # the viewer: the CT series (series number 2), scrolled by wheel and keys
    browser.get(f"{base}/ui/studies/{study}")
    series = [b for b in browser.find_elements(By.CSS_SELECTOR, "button.series")]
    assert len(series) == 2
    ct = next(b for b in series if "CT" in b.text)
    ct.click()
    wait.until(_view_ready)
    counter = browser.find_element(By.ID, "frame-counter")
    assert counter.text.endswith("/ 20")
    first_src, first = browser.find_element(By.ID, "view").get_attribute("src"), ""
    first = _image_digest(browser)
    start = int(counter.text.split("/")[0])
    viewer = browser.find_element(By.ID, "viewer")
    browser.execute_script(
        "arguments[0].dispatchEvent(new WheelEvent('wheel', {deltaY: 120, bubbles: true,"
        " cancelable: true}));",
        viewer,
    )
    wait.until(lambda b: b.find_element(By.ID, "frame-counter").text.startswith(f"{start + 1} "))
    wait.until(_view_ready)
    viewer.send_keys(Keys.ARROW_DOWN)
    viewer.send_keys(Keys.ARROW_DOWN)
    wait.until(lambda b: b.find_element(By.ID, "frame-counter").text.startswith(f"{start + 3} "))
    wait.until(lambda b: _view_ready(b) and b.find_element(By.ID, "view").get_attribute("src"))
    time.sleep(0.2)  # the new image is decoded; then compare pixels
    wait.until(_view_ready)
    assert browser.find_element(By.ID, "view").get_attribute("src") != first_src
    assert _image_digest(browser) != first  # the displayed image changed
    shot = artefacts / "viewer.png"
    browser.save_screenshot(str(shot))
    copy_to_docs(shot, "ui-viewer.png")

    assert _errors(browser) == []  # no console error on any page


@pytest.mark.slow
def test_first_paint_of_a_patient_page_with_50_studies(
    gateway: Gateway, tmp_path: Path, browser: Any, artefacts: Path
) -> None:
    cx = feed(gateway, "UI-0050")
    for n in range(50):
        publish_study(gateway, tmp_path / f"s{n}", "UI-0050", ct=0)
    url = f"{gateway.base_url}/ui/patients/{quote(cx, safe='')}"
    browser.get(url)  # warm: templates compiled, connections pooled
    paints = []
    painted = (
        "return performance.getEntriesByType('paint')"
        ".some(e => e.name === 'first-contentful-paint');"
    )
    for _ in range(5):
        browser.get(url)
        WebDriverWait(browser, 15).until(lambda b: b.execute_script(painted))  # recorded late
        paint = browser.execute_script(
            "const p = performance.getEntriesByType('paint')"
            ".find(e => e.name === 'first-contentful-paint');"
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [p ? p.startTime : -1, n.responseEnd - n.requestStart];"
        )
        paints.append(paint)
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.study")) == 50
    first_paint = sorted(p[0] for p in paints)[len(paints) // 2]
    server = sorted(p[1] for p in paints)[len(paints) // 2]
    (artefacts / "first-paint.txt").write_text(
        f"patient page, 50 studies: first contentful paint {first_paint:.0f} ms (median of 5), "
        f"request to response end {server:.0f} ms\n"
    )
    print(f"first contentful paint {first_paint:.0f} ms, response {server:.0f} ms")
    assert 0 < first_paint < 300
    assert _errors(browser) == []
