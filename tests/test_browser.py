"""The built book in headless Chromium with the network cut off: every page loads from
localhost alone, every chart and formula renders, static explorers respond to their sliders.

Run with `make test-browser` (builds the book first, or reuses it). Needs Debian's `chromium`
and `chromium-driver` (.ci/run installs them); selenium talks to that chromedriver directly,
so selenium-manager never downloads a browser. Screenshots of every page go to
book/_build/screenshots/ for review.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from gqa_lib.book import colab, render

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "book" / "_build"
HTML = BUILD / "html"
SHOTS = BUILD / "screenshots"
NETWORK_SCHEMES = {"http", "https", "ws", "wss"}  # not data:, blob:, chrome: (browser-internal)


@pytest.fixture(scope="module")
def html_dir() -> Path:
    """The built book; built here (strictly) when `make book` has not been run."""
    if not (HTML / "index.html").is_file():
        jb = Path(sys.executable).with_name("jupyter-book")
        subprocess.run([jb, "build", "book", "-W", "-n", "--keep-going"], cwd=ROOT, check=True)
    return HTML


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _toy_chart_page(tmp_path: Path, html_dir: Path, charts, *, css: bool = False):
    """Serve toy.html: Altair ``charts`` drawn by the book's bundle (and, with ``css``, its
    style sheet), as on a page of the book; the caller stops the server."""
    static = [render.BUNDLE_NAME] + (["gqa.css"] if css else [])
    head = [f'<script src="{render.BUNDLE_NAME}"></script>'] + (
        ['<link rel="stylesheet" href="gqa.css">'] if css else [])
    (tmp_path / "toy.html").write_text("\n".join(
        ["<!doctype html><html><head>", *head, "</head><body>",
         *(render.chart_html(c.to_dict()) for c in charts), "</body></html>"]))
    for name in static:
        shutil.copy(html_dir / "_static" / name, tmp_path)
    return _serve(tmp_path)


def _stop(server) -> None:
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(html_dir):
    server = _serve(html_dir)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _stop(server)


def _find(name: str, *candidates: str) -> str:
    for c in candidates:
        path = shutil.which(c)
        if path:
            return path
    pytest.fail(f"{name} not found: `apt-get install -y chromium chromium-driver` "
                "(.ci/run does this)")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _find("Chromium", "chromium", "chromium-browser")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 # no network but loopback: names do not resolve, and the rest goes to a
                 # dead proxy (Chromium never proxies loopback)
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 "--proxy-server=http://127.0.0.1:9"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=_find("chromedriver", "chromedriver"))
    drv = webdriver.Chrome(service=service, options=opts)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(90)  # the 20 s render poll, with room for a page that blocks
    yield drv
    drv.quit()


def _redirect(page: Path) -> bool:
    """A page that only sends the browser on (index.html -> intro.html): a script run on it
    races the navigation and loses its callback (a 90 s script timeout, now and then)."""
    return 'http-equiv="Refresh"' in page.read_text(encoding="utf-8")[:300]


def _pages(html_dir: Path) -> list[str]:
    pages = sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                   if not p.relative_to(html_dir).parts[0].startswith("_") and not _redirect(p))
    assert "intro.html" in pages
    return pages


def test_the_front_page_sends_the_reader_to_the_introduction(html_dir):
    front = html_dir / "index.html"
    assert _redirect(front) and "url=intro.html" in front.read_text()[:300]


def _network(drv) -> tuple[list[str], list[str]]:
    """URLs requested since the last call, and responses that failed (status >= 400; the
    browser's own favicon probe aside)."""
    urls, failed = [], []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif msg["method"] == "Network.responseReceived":
            resp = params["response"]
            if resp["status"] >= 400 and urlparse(resp["url"]).path != "/favicon.ico":
                failed.append(f"{resp['status']} {resp['url']}")
    return urls, failed


_WAIT_RENDERED = """
const done = arguments[arguments.length - 1];
const charts = () => [...document.querySelectorAll('.gqa-chart, [id^="altair-viz"]')];
const math = () => document.querySelectorAll('.math').length;
const settled = () => charts().every(el => el.dataset.gqaRendered || el.dataset.gqaError)
  && (math() === 0 || document.querySelectorAll('mjx-container').length > 0);
const start = Date.now();
(function poll() {
  if (settled() || Date.now() - start > 20000) {
    done(charts().map(el => ({id: el.id, error: el.dataset.gqaError || null,
                              drawn: !!el.querySelector('svg, canvas')})));
  } else setTimeout(poll, 100);
})();
"""


def _screenshot(drv, page: str) -> None:
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(1280, min(max(height, 800), 12000))
    SHOTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(SHOTS / (page.replace("/", "__").removesuffix(".html") + ".png")))
    drv.set_window_size(1280, 1000)


def test_every_page_renders_offline(html_dir, site, driver):
    _network(driver)  # drop anything logged before
    problems, n_charts, math_pages = [], 0, 0
    for page in _pages(html_dir):
        driver.get(f"{site}/{page}")
        charts = driver.execute_async_script(_WAIT_RENDERED)
        n_charts += len(charts)
        problems += [f"{page}: chart {c['id']} failed: {c['error']}" for c in charts
                     if c["error"]]
        problems += [f"{page}: chart {c['id']} drew no SVG or canvas" for c in charts
                     if not c["drawn"] and not c["error"]]
        n_math = driver.execute_script("return document.querySelectorAll('.math').length")
        typeset = driver.execute_script("return document.querySelectorAll('mjx-container').length")
        if n_math:
            math_pages += 1
            if not typeset:
                problems.append(f"{page}: {n_math} formulas but MathJax typeset none")
        _screenshot(driver, page)
        urls, failed = _network(driver)
        external = sorted({u for u in urls if urlparse(u).scheme in NETWORK_SCHEMES
                           and urlparse(u).hostname != "127.0.0.1"})
        problems += [f"{page}: requested an external host: {u}" for u in external]
        problems += [f"{page}: {f}" for f in failed]
    assert not problems, "\n".join(problems)
    assert n_charts > 0 and math_pages > 0, "the book should have charts and formulas"


def test_colab_buttons_open_the_repository_notebooks(html_dir):
    org_repo = urlparse(colab.REPO_URL).path.strip("/")
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = (html_dir / "notebooks" / nb.name).with_suffix(".html").read_text()
        links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page))
        assert links == {f"https://colab.research.google.com/github/{org_repo}/blob/main/"
                         f"notebooks/{nb.name}"}, nb.name


# ----- static explorers ---------------------------------------------------------------------
_OPTIMUM_TEXT = """
const [el, mark] = arguments;
return [...el.querySelectorAll(`g.${mark}_marks text`)].map(t => t.textContent).join(' | ');
"""
# An explorer's controls: sliders and menus (each moved to both ends).
_CONTROLS = ".vega-bindings input[type=range], .vega-bindings select"
_SET_SLIDER = """
const [el, index, which, done] = arguments;
const s = el.querySelectorAll('%s')[index];
if (s.tagName === 'SELECT') {
  s.selectedIndex = which === 'min' ? 0 : s.options.length - 1;
} else {
  s.value = which === 'min' ? s.min : s.max;
  s.dispatchEvent(new Event('input', {bubbles: true}));
}
s.dispatchEvent(new Event('change', {bubbles: true}));
el.gqaView.runAsync().then(() => done(s.value));
""" % _CONTROLS


def _slider_changes_optimum(drv, container) -> tuple[bool, str]:
    """Move each slider or menu of an explorer to both ends; True if the optimum text
    changes."""
    mark = container.get_attribute("data-gqa-explorer")
    n = drv.execute_script(
        "return arguments[0].querySelectorAll(arguments[1]).length", container, _CONTROLS)
    if not n:
        return False, "no slider or menu"
    seen = []
    for i in range(n):
        for which in ("min", "max"):
            drv.execute_async_script(_SET_SLIDER, container, i, which)
            seen.append(drv.execute_script(_OPTIMUM_TEXT, container, mark))
        if not seen[-1]:
            return False, f"no text in the mark {mark!r}_marks"
        if len(set(seen)) > 1:
            return True, ""
    return False, f"optimum stayed {seen[0]!r} for every slider position"


def _explorers(drv):
    from selenium.webdriver.common.by import By

    drv.execute_async_script(_WAIT_RENDERED)
    return drv.find_elements(By.CSS_SELECTOR, ".gqa-chart[data-gqa-explorer]")


def test_static_explorer_sliders_move_the_optimum(html_dir, site, driver):
    checked = 0
    for page in _pages(html_dir):
        if "data-gqa-explorer" not in (html_dir / page).read_text():
            continue
        driver.get(f"{site}/{page}")
        for container in _explorers(driver):
            ok, why = _slider_changes_optimum(driver, container)
            assert ok, f"{page}: explorer {container.get_attribute('id')}: {why}"
            checked += 1
    if not checked:
        pytest.skip("no page has a static explorer yet (no chart marked with "
                    "gqa_lib.book.render.mark_explorer); the check itself is exercised by "
                    "test_slider_check_on_a_toy_explorer")


def test_slider_check_on_a_toy_explorer(html_dir, driver, tmp_path):
    """The explorer check works (and can fail) on a toy chart: argmin of (x - p)^2, with p
    on a slider or on a menu."""
    import altair as alt
    import pandas as pd

    def toy(p):
        base = alt.Chart(pd.DataFrame({"x": range(1, 11)})).transform_calculate(
            cost="pow(datum.x - p, 2)")
        curve = base.mark_line().encode(x=alt.X("x:Q", title="x (units)"),
                                        y=alt.Y("cost:Q", title="cost (units)")).add_params(p)
        best = base.transform_window(rank="rank()", sort=[alt.SortField("cost")]
                                     ).transform_filter("datum.rank == 1").transform_calculate(
            label="'optimum x = ' + datum.x").mark_text(dy=-10).encode(
            x="x:Q", y="cost:Q", text="label:N").properties(name="optimum")
        return curve, best

    curve, best = toy(alt.param(name="p", value=3, bind=alt.binding_range(min=1, max=9, step=1)))
    moving = render.mark_explorer(curve + best, "optimum")
    menu = render.mark_explorer(alt.layer(*toy(alt.param(
        name="p", value=5, bind=alt.binding_select(options=[1, 5, 9])))), "optimum")
    stuck = alt.Chart(pd.DataFrame({"label": ["optimum x = 5"]})).mark_text().encode(
        text="label:N").properties(name="optimum")  # ignores the slider: the check must fail
    fixed = render.mark_explorer(curve + stuck, "optimum")
    server = _toy_chart_page(tmp_path, html_dir, [moving, fixed, menu])
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/toy.html")
        moving_el, fixed_el, menu_el = _explorers(driver)
        assert _slider_changes_optimum(driver, moving_el) == (True, "")
        assert _slider_changes_optimum(driver, menu_el) == (True, "")
        ok, why = _slider_changes_optimum(driver, fixed_el)
        assert not ok and "stayed" in why
    finally:
        _stop(server)


# ----- the page as a reader meets it: widths, dark mode, tables, prose ----------------------
WIDTHS = (1400, 390)  # a desktop and a phone (CSS pixels)

# Elements that stick out of the article, unless a scroll box (overflow-x auto/scroll/hidden)
# between them and the article holds them; and the page's own horizontal scroll.
_OVERFLOW = """
const art = document.querySelector('article.bd-article') || document.querySelector('main');
if (!art) return [];  // a redirect page
const right = art.getBoundingClientRect().right + 2;
const boxed = (el) => {
  for (let p = el.parentElement; p && p !== art; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
  }
  return false;
};
const out = [];
for (const el of art.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && r.right > right && !boxed(el)) {
    out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} ends at `
             + `${Math.round(r.right)} px > ${Math.round(right)} px`);
    if (out.length >= 5) break;
  }
}
if (document.documentElement.scrollWidth > window.innerWidth + 1)
  out.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide`);
return out;
"""

# Tables whose first column is 0, 1, ..., n-1 (a RangeIndex shown); headers in snake_case.
_TABLES = """
const art = document.querySelector('article.bd-article') || document.querySelector('main');
if (!art) return [];  // a redirect page
const out = [];
for (const t of art.querySelectorAll('table')) {
  const rows = [...t.querySelectorAll('tbody tr')];
  const first = rows.map(r => (r.cells[0] ? r.cells[0].textContent.trim() : ''));
  if (rows.length >= 2 && first.every((v, i) => v === String(i)))
    out.push('a table shows a 0..n-1 index column: ' + first.slice(0, 4).join(', '));
  for (const th of t.querySelectorAll('thead th')) {
    if (th.querySelector('code')) continue;  // a field name shown as code, on purpose
    const h = th.textContent.trim();
    if (/\\b[a-z]{2,}_[a-z]{2,}\\b/.test(h)) out.push(`snake_case header: ${h}`);
  }
}
return out;
"""

# On a phone (< 640 px), a shown table wider than its box: it should have become cards
# (gqa-tables.js), one per row, so that no column is off-screen.
_PHONE_TABLES = """
if (window.innerWidth >= 640) return [];
const art = document.querySelector('article.bd-article') || document.querySelector('main');
if (!art) return [];
const out = [];
for (const t of art.querySelectorAll('table')) {
  if (t.closest('.cell_input, .highlight') || !t.offsetParent) continue;  // code; hidden
  const box = t.parentElement.clientWidth;
  if (t.scrollWidth > box + 1) {
    const head = t.tHead ? t.tHead.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60) : '';
    out.push(`table wider than its box on a phone (${t.scrollWidth} > ${box} px): ${head}`);
  }
}
return out;
"""

# Prose (paragraphs, list items, captions) with a raw glue role or "nan".
_PROSE = """
const art = document.querySelector('article.bd-article') || document.querySelector('main');
if (!art) return [];  // a redirect page
const out = [];
if (art.innerText.includes('{glue')) out.push('raw {glue text on the page');
for (const el of art.querySelectorAll('p, li, figcaption, td')) {
  if (el.closest('pre, code, .highlight, .cell_input')) continue;
  const m = el.textContent.match(/\\bnan\\b/i);
  if (m) out.push('"nan" in prose: ' + el.textContent.trim().slice(0, 80));
}
return out;
"""

# Every chart drawn, titled ("Figure n. ...") and captioned.
_CHARTS = """
return [...document.querySelectorAll('.gqa-chart')].map(el => ({
  id: el.id, drawn: !!el.querySelector('svg'),
  title: [...el.querySelectorAll('svg text')].map(t => t.textContent)
           .find(t => /^Figure \\d+\\./.test(t)) || '',
  caption: (el.closest('figure') && el.closest('figure').querySelector('figcaption'))
           ? el.closest('figure').querySelector('figcaption').textContent : '',
  label: el.closest('figure') ? (el.closest('figure').getAttribute('aria-label') || '') : '',
  theme: el.dataset.gqaTheme || '',
  legend_titles: [...el.querySelectorAll('.role-legend-title text')].map(t => t.textContent),
  // legend symbols drawn with no visible paint: no stroke, and no fill or an open path (a
  // dash "filled" like a point shows nothing)
  blank_symbols: [...el.querySelectorAll('.role-legend-symbol path')].filter(p => {
    const st = getComputedStyle(p), seen = (c) => c && c !== 'none' && !/rgba\\(.*, 0\\)$/.test(c);
    const stroke = seen(st.stroke) && parseFloat(st.strokeWidth) > 0;
    const fill = seen(st.fill) && /[AaZz]/.test(p.getAttribute('d') || '');
    return !stroke && !fill; }).length,
  // drawn width over the SVG's own (a chart wider than its column is scaled down), and the
  // smallest text as the reader sees it (font size times that scale)
  scale: (() => { const svg = el.querySelector('svg'); if (!svg) return 1;
    return svg.getBoundingClientRect().width / parseFloat(svg.getAttribute('width')); })(),
  min_text_px: Math.min(...[...el.querySelectorAll('svg text')].filter(t => t.textContent.trim())
    .map(t => parseFloat(getComputedStyle(t).fontSize) * (el.querySelector('svg')
      .getBoundingClientRect().width / parseFloat(el.querySelector('svg').getAttribute('width'))))),
  // visible text (cell and point labels, axis labels, legends) drawn over other text: pairs
  // whose boxes overlap by more than 1 px each way, named by their text (slanted labels
  // left out: their boxes overlap where the letters do not)
  overlapping_text: (() => {
    const shown = (t) => { const st = getComputedStyle(t);
      return t.textContent.trim() && st.opacity !== '0' && st.fillOpacity !== '0' &&
        st.visibility !== 'hidden' && !/rotate\\((?!0\\))/.test(t.getAttribute('transform') || ''); };
    const boxes = [...el.querySelectorAll('g.mark-text text')].filter(shown)
      .map(t => ({text: t.textContent, r: t.getBoundingClientRect()}));
    const out = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
          Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1)
        out.push(boxes[i].text + ' / ' + boxes[j].text);
    }
    return out; })()
}));
"""
MIN_CHART_SCALE, MIN_CHART_TEXT_PX = 0.75, 9  # issue 24: readable charts at 390 px

_SET_DARK = """
document.documentElement.dataset.theme = 'dark';
document.documentElement.dataset.mode = 'dark';
"""

_IGNORED_CONSOLE = ("favicon.ico",)


def _console(drv) -> list[str]:
    """Console errors and warnings since the last call (the browser's favicon probe aside)."""
    return [f"{e['level']}: {e['message'][:200]}" for e in drv.get_log("browser")
            if e["level"] in ("SEVERE", "WARNING")
            and not any(s in e["message"] for s in _IGNORED_CONSOLE)]


def _shot(drv, page: str, folder: str, width: int) -> None:
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(width, min(max(height, 800), 16000))
    (SHOTS / folder).mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(SHOTS / folder / (page.replace("/", "__").removesuffix(".html")
                                              + ".png")))


def _reader_problems(drv, page: str, label: str) -> list[str]:
    problems = [f"{page} ({label}): {p}" for p in drv.execute_script(_OVERFLOW)]
    problems += [f"{page} ({label}): {p}" for p in drv.execute_script(_TABLES)]
    problems += [f"{page} ({label}): {p}" for p in drv.execute_script(_PROSE)]
    problems += [f"{page} ({label}): {p}" for p in drv.execute_script(_PHONE_TABLES)]
    charts = drv.execute_script(_CHARTS)
    numbers = [int(m.group(1)) for c in charts
               if (m := re.match(r"Figure (\d+)\.", c["label"]))]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"{page} ({label}): figures numbered {numbers}, not 1..{len(numbers)} "
                        "in page order")
    for c in charts:
        if not c["drawn"]:
            problems.append(f"{page} ({label}): chart {c['id']} not drawn")
        if not c["title"].startswith("Figure "):
            problems.append(f"{page} ({label}): chart {c['id']} has no 'Figure n.' title")
        if not c["label"].startswith("Figure ") or not c["caption"].strip():
            problems.append(f"{page} ({label}): chart {c['id']} has no caption")
        elif re.match(r"Figure \d+\.", c["caption"]):
            problems.append(f"{page} ({label}): chart {c['id']}'s caption repeats its number")
        if c["blank_symbols"]:
            problems.append(f"{page} ({label}): chart {c['id']} has {c['blank_symbols']} "
                            "legend symbols drawn invisibly")
        twice = sorted({t for t in c["legend_titles"] if c["legend_titles"].count(t) > 1})
        if twice:  # e.g. colour and shape of one field whose scales see different data
            problems.append(f"{page} ({label}): chart {c['id']} shows two legends titled "
                            f"{twice}: one field, one legend")
        if c["drawn"] and c["scale"] < MIN_CHART_SCALE:
            problems.append(f"{page} ({label}): chart {c['id']} scaled to {c['scale']:.0%} "
                            f"of its width (at least {MIN_CHART_SCALE:.0%})")
        if c["drawn"] and c["min_text_px"] < MIN_CHART_TEXT_PX:
            problems.append(f"{page} ({label}): chart {c['id']} has text of "
                            f"{c['min_text_px']:.1f} px (at least {MIN_CHART_TEXT_PX})")
        if c["overlapping_text"]:
            problems.append(f"{page} ({label}): chart {c['id']} draws text over text: "
                            + "; ".join(c["overlapping_text"][:3]))
    return problems


def test_chart_scale_check_on_a_toy_page(html_dir, driver, tmp_path):
    """The phone check can fail: a 1,200 px single view in a 390 px window is scaled down
    (and its text with it), while a multi-panel chart is stacked at the column's width."""
    import altair as alt
    import pandas as pd

    base = alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line().encode(
        x=alt.X("x:Q", title="x (units)"), y=alt.Y("y:Q", title="y (units)"))
    wide = base.properties(width=1200, title="Figure 1. Too wide")
    panels = alt.hconcat(base.properties(width=300), base.properties(width=300),
                         title="Figure 2. Two panels")
    server = _toy_chart_page(tmp_path, html_dir, [wide, panels], css=True)
    try:
        driver.set_window_size(390, 1000)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/toy.html")
        driver.execute_async_script(_WAIT_RENDERED)
        too_wide, stacked = driver.execute_script(_CHARTS)
        assert too_wide["scale"] < MIN_CHART_SCALE and too_wide["min_text_px"] < MIN_CHART_TEXT_PX
        assert stacked["scale"] >= MIN_CHART_SCALE and stacked["min_text_px"] >= MIN_CHART_TEXT_PX
    finally:
        driver.set_window_size(1280, 1000)
        _stop(server)


def test_text_overlap_check_on_a_toy_page(html_dir, driver, tmp_path):
    """The overlap check can fail: labels too long for their cells run into each other;
    the same labels one per cell, and slanted axis labels, pass."""
    import altair as alt
    import pandas as pd

    def grid(label, angle=0, column="{}"):
        df = pd.DataFrame({"x": [column.format(c) for c in "abcdef"], "y": [1] * 6,
                           "t": [label] * 6})
        base = alt.Chart(df).encode(x=alt.X("x:N", axis=alt.Axis(labelAngle=angle)),
                                    y=alt.Y("y:O"))
        return (base.mark_rect() + base.mark_text().encode(text="t:N")).properties(width=240)

    server = _toy_chart_page(tmp_path, html_dir, [grid("paper (32, 16)"), grid("(8, 1)", -40, "configuration {}")])
    try:
        driver.set_window_size(1280, 1000)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/toy.html")
        driver.execute_async_script(_WAIT_RENDERED)
        crowded, roomy = driver.execute_script(_CHARTS)
        assert crowded["overlapping_text"] and "paper (32, 16)" in crowded["overlapping_text"][0]
        assert roomy["overlapping_text"] == []
    finally:
        _stop(server)


def test_wide_tables_become_cards_on_a_phone(driver, tmp_path):
    """At 390 px a table wider than its column shows one card per row, each cell under its
    column's header, and fits; a narrow table stays a table; at 1400 px both are tables.
    Without the book's table script the wide table sticks out: the phone check catches it."""
    import pandas as pd

    from gqa_lib.book import sphinx_ext, tables

    wide = pd.DataFrame({f"a long column header {i}": [123456789.0 * i, 2.0] for i in range(8)})
    narrow = pd.DataFrame({"model": ["x"], "value": [1.5]})
    (tmp_path / sphinx_ext.CSS_NAME).write_text(sphinx_ext.CSS)
    (tmp_path / sphinx_ext.TABLES_JS_NAME).write_text(sphinx_ext.TABLES_JS)
    body = "".join([tables.show(wide)._repr_html_(), tables.show(narrow)._repr_html_()])
    for name, script in (("toy", sphinx_ext.TABLES_JS_NAME), ("bare", "none.js")):
        (tmp_path / f"{name}.html").write_text(
            f'<!doctype html><html><head><meta name="viewport" content="width=device-width">'
            f'<link rel="stylesheet" href="{sphinx_ext.CSS_NAME}"><script src="{script}">'
            f'</script></head><body><article class="bd-article">{body}</article></body></html>')
    server = _serve(tmp_path)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cards = """const done = arguments[arguments.length - 1];  // once the page has loaded
    const read = () => done([...document.querySelectorAll('table')].map(t => t.className));
    if (document.readyState === 'complete') read(); else window.addEventListener('load', read);
    """
    try:
        driver.set_window_size(390, 1000)
        driver.get(f"{url}/toy.html")
        assert driver.execute_async_script(cards) == ["gqa-cards", ""]
        assert driver.execute_script(_PHONE_TABLES) == []
        label = driver.execute_script(
            "const td = document.querySelector('table.gqa-cards td:nth-child(2)');"
            "return [td.dataset.label, getComputedStyle(td, '::before').content]")
        assert label == ["a long column header 1", '"a long column header 1"']
        driver.get(f"{url}/bare.html")
        bare = driver.execute_script(_PHONE_TABLES)
        assert len(bare) == 1 and bare[0].startswith("table wider than its box on a phone")
        driver.set_window_size(1400, 1000)
        driver.get(f"{url}/toy.html")
        assert driver.execute_async_script(cards) == ["", ""]
    finally:
        driver.set_window_size(1280, 1000)
        _stop(server)


def test_legend_check_on_a_toy_page(html_dir, driver, tmp_path):
    """Colour and shape of one field make one legend only when both scales see the same
    domain: lines coloured over all rows and points shaped over some give two legends, which
    the reader check reports; one explicit domain merges them. A dashed line drawn with its
    points (point=True) gets dash symbols filled like points: invisible, and reported."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame({"x": [1, 2, 1, 2], "y": [1, 2, 2, 3], "H": ["a", "a", "b", "b"],
                       "kind": ["fit", "fit", "fit", "point"]})

    def chart(domain):
        scale = alt.Scale(domain=domain) if domain else alt.Undefined
        base = alt.Chart(df).encode(x="x:Q", y="y:Q", color=alt.Color("H:N", scale=scale),
                                    shape=alt.Shape("H:N", scale=scale))
        return alt.layer(base.mark_line(), base.transform_filter("datum.kind == 'point'")
                         .mark_point()).properties(title="Figure 1. Toy")

    dashed = alt.Chart(df).mark_line(point=True).encode(  # dashes "filled" like points
        x="x:Q", y="y:Q", color="H:N", strokeDash=alt.StrokeDash("kind:N", legend=alt.Legend(
            symbolType="stroke"))).properties(title="Figure 2. Dashes")
    server = _toy_chart_page(tmp_path, html_dir, [chart(None), chart(["a", "b"]), dashed])
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/toy.html")
        driver.execute_async_script(_WAIT_RENDERED)
        split, merged, blank = driver.execute_script(_CHARTS)
        problems = _reader_problems(driver, "toy.html", "toy")
    finally:
        _stop(server)
    assert split["legend_titles"] == ["H", "H"] and merged["legend_titles"] == ["H"]
    assert (split["blank_symbols"], merged["blank_symbols"], blank["blank_symbols"]) == (0, 0, 2)
    assert [p for p in problems if "two legends" in p] == [
        f"toy.html (toy): chart {split['id']} shows two legends titled ['H']: one field, "
        "one legend"]


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_read_well_at_each_width(html_dir, site, driver, width):
    """At a desktop and a phone width: nothing sticks out of the column except inside a
    scroll box, no console error or warning, no 0..n-1 index column, no snake_case header,
    no raw glue or "nan" in prose, every chart titled, captioned and drawn, at >= 75% of its
    width with no text below 9 px (multi-panel charts stack on a phone). One screenshot
    per page goes to book/_build/screenshots/<width>/."""
    driver.get_log("browser")
    problems = []
    for page in _pages(html_dir):
        if page in ("genindex.html", "search.html"):
            continue
        driver.set_window_size(width, 1000)
        driver.get(f"{site}/{page}")
        driver.execute_async_script(_WAIT_RENDERED)
        problems += _reader_problems(driver, page, f"{width} px")
        problems += [f"{page} ({width} px): console {m}" for m in _console(driver)]
        _shot(driver, page, str(width), width)
    driver.set_window_size(1280, 1000)
    assert not problems, "\n".join(problems)


# Legend symbols whose visible paint (fill, else stroke) is too dark to see on the dark page
# (relative luminance < 0.06: contrast below 2:1 on the dark page): [chart id, colour].
_DARK_SYMBOLS = """
const lum = (c) => { const m = c.match(/[\\d.]+/g); if (!m) return 1;
  const [r, g, b] = m.slice(0, 3).map(Number).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const seen = (c) => c && c !== 'none' && !/rgba\\(.*, 0\\)$/.test(c);
const out = [];
for (const chart of document.querySelectorAll('.gqa-chart')) {
  for (const p of chart.querySelectorAll('.role-legend-symbol path')) {
    const st = getComputedStyle(p);
    const paint = seen(st.fill) ? st.fill : (seen(st.stroke) ? st.stroke : null);
    if (paint && lum(paint) < 0.06) { out.push([chart.id, paint]); break; }
  }
}
return out;
"""


def test_charts_follow_dark_mode(html_dir, site, driver):
    """Switched to dark, every chart is drawn again with the dark theme's axis colours on
    its transparent background, every legend symbol visible, with no console error;
    screenshots in screenshots/dark/."""
    driver.get_log("browser")
    problems, n = [], 0
    for page in _pages(html_dir):
        if "gqa-chart" not in (html_dir / page).read_text():
            continue
        driver.set_window_size(1400, 1000)
        driver.get(f"{site}/{page}")
        driver.execute_async_script(_WAIT_RENDERED)
        driver.execute_script(_SET_DARK)
        driver.execute_async_script("""
const done = arguments[arguments.length - 1], start = Date.now();
(function poll() {
  const charts = [...document.querySelectorAll('.gqa-chart')];
  if (charts.every(c => c.dataset.gqaTheme === 'dark') || Date.now() - start > 20000) done();
  else setTimeout(poll, 100);
})();""")
        for c in driver.execute_script(_CHARTS):
            n += 1
            if c["theme"] != "dark" or not c["drawn"]:
                problems.append(f"{page}: chart {c['id']} not redrawn dark")
        bg = driver.execute_script(
            "return [...document.querySelectorAll('.gqa-chart svg')].map(s => "
            "getComputedStyle(s).backgroundColor)")
        problems += [f"{page}: a chart has an opaque background {b}" for b in bg
                     if b not in ("rgba(0, 0, 0, 0)", "transparent")]
        problems += [f"{page}: chart {i} has a legend symbol dark on the dark page ({c})"
                     for i, c in driver.execute_script(_DARK_SYMBOLS)]
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('.gqa-chart, .gqa-table')].map(el => "
            "getComputedStyle(el.closest('.text_html') || el).backgroundColor)")
        problems += [f"{page}: an output box is not the page's background in dark mode: {b}"
                     for b in boxes if b not in ("rgba(0, 0, 0, 0)", "transparent")]
        problems += [f"{page} (dark): console {m}" for m in _console(driver)]
        _shot(driver, page, "dark", 1400)
    driver.set_window_size(1280, 1000)
    assert n > 0 and not problems, "\n".join(problems)


def test_download_button_gives_the_executed_notebook(html_dir):
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        served = json.loads((html_dir / "_sources" / "notebooks" / nb.name).read_text())
        outputs = sum(len(c.get("outputs", [])) for c in served["cells"]
                      if c["cell_type"] == "code")
        assert outputs > 0, f"{nb.name}: the download button serves a notebook without outputs"


def test_build_status_is_in_words(html_dir):
    """The status page's execution table says "passed" for each page, not MyST-NB's emoji
    (an empty box without an emoji font)."""
    from gqa_lib.book.sphinx_ext import EXEC_STATUS_WORDS

    text = (html_dir / "status.html").read_text()
    assert not any(mark in text for mark in EXEC_STATUS_WORDS), "emoji status marks"
    pages = len(list((ROOT / "notebooks").glob("*.ipynb")))
    assert text.count(">passed<") >= pages, "a page without its status"


def _tooltips(spec):
    """Every tooltip entry (a dict with a field) anywhere in a Vega-Lite spec."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "tooltip":
                yield from (t for t in (value if isinstance(value, list) else [value])
                            if isinstance(t, dict) and "field" in t)
            else:
                yield from _tooltips(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _tooltips(value)


def test_chart_tooltips_name_their_values_in_words(html_dir):
    """A hovered point names each value in words ("context T (tokens)"), never by its
    column ("context_len", "loss_nats"): every tooltip entry of every chart has a title
    (figures.tip), and no title is a column name."""
    bad, seen = [], 0
    for page in _pages(html_dir):
        text = (html_dir / page).read_text()
        for m in re.finditer(r'gqaEmbed\("[^"]+", (\{.*?\})\);</script>', text, re.S):
            for t in _tooltips(json.loads(m.group(1))):
                seen += 1
                title = t.get("title")
                if not title or re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", str(title)):
                    bad.append(f"{page}: {t['field']} titled {title!r}")
    assert seen > 50, f"only {seen} tooltip entries found"
    assert not bad, "\n".join(sorted(set(bad)))


def test_each_page_has_one_copy_of_each_script(html_dir):
    for page in _pages(html_dir):
        text = (html_dir / page).read_text()
        assert text.count("const THEBE_JS_URL") <= 1, page
        assert text.count("var togglebuttonSelector") <= 1, page


def test_pages_link_the_data_they_use(html_dir):
    """The data files a page reads are downloadable from it (Sphinx's _downloads/)."""
    checked = 0
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = (html_dir / "notebooks" / nb.name).with_suffix(".html")
        links = re.findall(r'href="\.\./(_downloads/[^"]+)"', page.read_text())
        for link in links:
            assert (html_dir / link).is_file(), f"{nb.name}: {link}"
        checked += len(links)
    assert checked >= 5


# ----- tables that fit their column -----------------------------------------------------------
TABLE_WIDTH = 1400  # the desktop width at which every table must fit the article column

# Every table of the article (those in <details> toggles opened first) against the article's
# column: its content box, getBoundingClientRect minus padding. A table in a scroll box still
# counts with its full width: a scroll box at desktop width hides the columns the prose
# discusses. Each table is named by its caption, else its section and first headers.
_TABLE_WIDTHS = """
const art = document.querySelector('article.bd-article');
if (!art) return null;  // a redirect page
for (const d of art.querySelectorAll('details')) d.open = true;
const cs = getComputedStyle(art), box = art.getBoundingClientRect();
const column = box.width - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
const name = (t) => {
  const cap = t.caption ? t.caption.textContent.trim() : '';
  const sec = t.closest('section');
  const h = sec && sec.querySelector(':scope > h1, :scope > h2, :scope > h3, :scope > h4');
  const where = h ? h.textContent.replace(/#$/, '').trim() : '';
  const heads = [...t.querySelectorAll('thead th')].slice(0, 4)
    .map(th => th.textContent.trim()).join(' | ');
  return cap ? `"${cap.slice(0, 80)}"` : `in "${where}", headers ${heads}`;
};
return {column: Math.round(column), tables: [...art.querySelectorAll('table')].map(t => ({
  name: name(t), width: Math.round(t.getBoundingClientRect().width),
  height: Math.round(t.getBoundingClientRect().height)}))};
"""


def _wide_tables(drv, page: str) -> tuple[list[str], list[dict]]:
    """Problems (tables wider than the column, named) and every table's measurements."""
    got = drv.execute_script(_TABLE_WIDTHS)
    if not got:
        return [], []
    rows = [{"page": page, "column": got["column"], **t} for t in got["tables"]]
    return [f"{page}: table {t['name']} is {t['width']} px wide, the column "
            f"{t['column']} px" for t in rows if t["width"] > t["column"] + 1], rows


def test_tables_fit_the_column(html_dir, site, driver):
    """At 1400 px every table (toggles opened) is no wider than the article's column, so the
    columns the prose talks about are on screen. The measurements of every table go to
    book/_build/screenshots/table-widths.json."""
    problems, rows = [], []
    driver.set_window_size(TABLE_WIDTH, 1000)
    for page in _pages(html_dir):
        if page in ("genindex.html", "search.html"):
            continue
        driver.get(f"{site}/{page}")
        driver.execute_async_script(_WAIT_RENDERED)
        p, r = _wide_tables(driver, page)
        problems += p
        rows += r
    driver.set_window_size(1280, 1000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "table-widths.json").write_text(json.dumps(rows, indent=1))
    assert rows, "the book should have tables"
    assert not problems, f"{len(problems)} of {len(rows)} tables too wide:\n" + "\n".join(problems)


def test_table_width_check_on_a_toy_page(html_dir, driver, tmp_path):
    """The width check works, and can fail, on a toy page: a wide table in a scroll box and a
    wide table in a closed toggle are caught by name, a narrow one passes."""
    import pandas as pd

    from gqa_lib.book import tables

    wide = pd.DataFrame({f"a long column header {i}": [123456789.0 * i] for i in range(12)})
    narrow = pd.DataFrame({"model": ["x"], "value": [1.5]})
    page = "\n".join([
        "<!doctype html><html><body>",
        '<article class="bd-article" style="width:600px;padding:0 20px">',
        tables.show(wide, caption="Too wide")._repr_html_(),
        tables.show(narrow, caption="Narrow")._repr_html_(),
        "<section><h2>Hidden</h2><details><summary>more</summary>",
        tables.show(wide)._repr_html_(), "</details></section>",
        "</article></body></html>"])
    (tmp_path / "toy.html").write_text(page)
    server = _serve(tmp_path)
    try:
        driver.set_window_size(TABLE_WIDTH, 1000)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/toy.html")
        problems, rows = _wide_tables(driver, "toy.html")
    finally:
        driver.set_window_size(1280, 1000)
        _stop(server)
    assert len(rows) == 3 and rows[0]["column"] == 600
    assert len(problems) == 2, problems
    assert '"Too wide"' in problems[0]
    assert 'in "Hidden", headers a long column header 0' in problems[1]
