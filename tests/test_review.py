"""The review page: the exclusion list it writes, its server's refusals, and a person's session in chromium.

The browser tests drive Debian's chromium through its chromium-driver with Selenium
(`scripts/browser.sh` installs both; Selenium downloads nothing), and run the
workflow's filter and pack rules through Snakemake on synthetic aligned faces.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import h5py
import pytest
import yaml

from stylegan import cli, fileio
from stylegan.data import filter as face_filter
from stylegan.data.review import exclusions
from stylegan.data.review.faces import Faces
from stylegan.data.review.server import Review, ReviewServer
from tests import faces

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's chromium and chromium-driver
TITLE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'  # a crafted Flickr title
PER_PAGE = 6


# --- the exclusion list ------------------------------------------------------------------


def test_marks_are_lines_the_filter_reads_and_hand_lines_stay(tmp_path: Path) -> None:
    listed = tmp_path / "exclude.txt"
    listed.write_text("# by hand\nflickr:9   # a person's note\nflickr:8#0\n")
    exclusions.set_mark(listed, "flickr:1#0", "statue")
    exclusions.set_mark(listed, "flickr:2#1", "photo")
    marks = exclusions.set_mark(listed, "flickr:1#0", "painting")  # a new reason replaces the old line
    assert marks == {"flickr:8#0": "other", "flickr:1#0": "painting", "flickr:2#1": "photo"}
    assert face_filter.read_id_list(str(listed)) == {"flickr:9", "flickr:8#0", "flickr:1#0", "flickr:2#1"}
    assert "flickr:1#0  # painting\n" in listed.read_text() and "flickr:9   # a person's note\n" in listed.read_text()
    exclusions.set_mark(listed, "flickr:2#1", None)
    assert face_filter.read_id_list(str(listed)) == {"flickr:9", "flickr:8#0", "flickr:1#0"}
    assert not list(tmp_path.glob(".exclude.txt.*"))  # atomic: no temporary file left beside it


def test_a_new_list_starts_with_its_header(tmp_path: Path) -> None:
    listed = tmp_path / "lists" / "exclude.txt"
    assert exclusions.set_mark(listed, "flickr:1#0", "not_face") == {"flickr:1#0": "not_face"}
    assert listed.read_text() == f"{exclusions.HEADER}\nflickr:1#0  # not a face\n"
    with pytest.raises(ValueError, match="unknown reason"):
        exclusions.set_mark(listed, "flickr:1#0", "ugly")


def test_without_filter_exclude_it_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"filter": {"exclude": None}}))
    assert cli.main(["review", "--port", "0"]) == 2
    assert "filter.exclude is null" in caplog.text


# --- the server's refusals (no browser) ------------------------------------------------------


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ReviewServer]:
    """A review server on a free port over two faces; the second record names a file outside the dataset."""
    images = tmp_path / "results" / "align" / "faces"
    kept = faces.make_faces(images / "000", photos=1)
    outside = faces.face_record(tmp_path / "elsewhere", "flickr:7", faces.picture("cup", 64))
    review = Review(
        Faces(kept=kept + [outside], rejected=[], images=images.resolve(), settings=face_filter.FilterSettings()),
        tmp_path / "exclude.txt",
        per_page=10,
    )
    running = ReviewServer(review, 0)
    threading.Thread(target=running.serve_forever, daemon=True).start()
    yield running
    running.shutdown()
    running.server_close()


def request(
    server: ReviewServer, method: str, path: str, body: dict | None = None, **headers: str
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*server.server_address, timeout=10)
    payload = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    return response.status, response.read()


def test_it_listens_on_loopback_only(server: ReviewServer) -> None:
    assert server.server_address[0] == "127.0.0.1"


def test_paths_outside_the_dataset_are_refused(server: ReviewServer) -> None:
    assert request(server, "GET", f"/thumb?face={quote('flickr:100#0', safe='')}")[0] == 200
    assert (
        request(server, "GET", f"/thumb?face={quote('flickr:7#0', safe='')}")[0] == 403
    )  # its record names /elsewhere
    status, page = request(server, "GET", "/?view=rejected&filter=%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 200 and b"<script>alert" not in page and b"&lt;script&gt;alert(1)" in page  # the query, as text
    status, page = request(server, "GET", "/")
    assert status == 200 and page.count(b'<img src="/thumb') == 2 and b"no image" in page  # its card, without it
    for path in (
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/thumb?face=../../../../etc/passwd",
        "/page.js/../../faces.py",
        "/faces.py",
        "/thumb?face=" + str(server.review.faces.kept[0]["image"]),
    ):
        status, body = request(server, "GET", path)
        assert status == 404 and b"root:" not in body, path


def test_other_hosts_and_origins_are_refused(server: ReviewServer) -> None:
    mark = {"face": "flickr:100#0", "reason": "statue"}
    assert request(server, "GET", "/", Host="attacker.example:80")[0] == 403
    assert request(server, "POST", "/mark", mark, Origin="http://attacker.example")[0] == 403
    assert request(server, "POST", "/mark", {"face": "flickr:999#0", "reason": "statue"})[0] == 400
    assert request(server, "POST", "/mark", {**mark, "reason": "ugly"})[0] == 400
    assert request(server, "POST", "/mark", {"face": ["flickr:100#0"], "reason": "statue"})[0] == 400
    assert not (Path(server.review.exclude)).exists()
    assert request(server, "POST", "/mark", mark)[0] == 200
    assert exclusions.read_marks(server.review.exclude) == {"flickr:100#0": "statue"}


# --- a person's session in chromium, then the workflow ---------------------------------------


def snakemake(workdir: Path) -> None:
    """The workflow's filter and pack rules over the align output already there (no rule upstream may run)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "results/dataset/manifest.json",
        "--cores",
        "2",
        "--allowed-rules",
        "filter",
        "pack",
    ]
    done = subprocess.run(command, check=False, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo config with `filter.exclude` set, synthetic align output (8 photos, 16 faces), filtered and packed."""
    work = tmp_path_factory.mktemp("review")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["filter"]["exclude"] = "lists/exclude.txt"
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    fileio.write_text(work / "lists" / "exclude.txt", "# faces a person rejected, one id per line\n")
    records = faces.make_faces(work / "results" / "align" / "faces" / "000", photos=8)
    records[2].update(title=TITLE, owner_name="<b>Mallory</b>")
    chunks = [records] + [[] for _ in range(config["crawl"]["chunks"] - 1)]
    for number, chunk in enumerate(chunks):
        fileio.write_jsonl(work / "results" / "align" / "chunks" / f"{number:03d}.jsonl", chunk)
    snakemake(work)
    return work


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless chromium driven through Debian's chromedriver: Selenium is given both paths, so it downloads nothing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"no {path}: run `bash scripts/browser.sh` as root (it installs Debian's {package})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)  # --no-sandbox: chromium refuses its sandbox as root (CI)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_review(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """`stylegan review` as a person starts it, in the workflow's directory; returns once it listens."""
    log = workdir / f"review-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "stylegan.cli", "review", "--port", str(port), "--per-page", str(PER_PAGE)],
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    deadline = time.monotonic() + 60
    while "review: http://127.0.0.1" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the server gets no chance to save anything more."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def cards(driver: object) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, ".face")  # type: ignore[attr-defined]


def wait_for(driver: object, condition: object, what: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda _: condition(), message=what)  # type: ignore[operator]


def shard_faces(workdir: Path) -> set[str]:
    manifest = workdir / "results" / "dataset" / "manifest.json"
    found: set[str] = set()
    for entry in json.loads(manifest.read_text())["shards"]:
        with h5py.File(manifest.parent / entry["path"], "r") as h5:
            found |= set(h5["face_id"].asstr()[:])
    return found


def test_marks_by_mouse_and_keys_survive_a_kill_and_leave_the_shards(workdir: Path, browser: object) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    listed = workdir / "lists" / "exclude.txt"
    port = free_port()
    server = start_review(workdir, port)
    try:
        browser.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
        shown = cards(browser)
        ids = [card.get_attribute("data-face") for card in shown]
        assert len(ids) == PER_PAGE and set(ids) <= shard_faces(workdir)
        for card, reason in ((shown[0], "statue"), (shown[1], "photo")):  # two with the mouse
            ActionChains(browser).click(card.find_element(By.CSS_SELECTOR, f'button[data-reason="{reason}"]')).perform()
            wait_for(browser, lambda card=card, reason=reason: card.get_attribute("data-reason") == reason, reason)
        ActionChains(browser).send_keys(
            Keys.ARROW_RIGHT, "4"
        ).perform()  # one with keys: the card after the clicked one
        wait_for(browser, lambda: shown[2].get_attribute("data-reason") == "not_face", "key 4")
        assert exclusions.read_marks(listed) == {ids[0]: "statue", ids[1]: "photo", ids[2]: "not_face"}
        ActionChains(browser).send_keys("n").perform()  # page on and back: the undo stack outlives the page
        wait_for(
            browser,
            lambda: "page=2" in browser.current_url and cards(browser)[0].get_attribute("data-face") not in ids,
            "page 2",
        )
        ActionChains(browser).send_keys(Keys.PAGE_UP).perform()
        wait_for(browser, lambda: "page=1" in browser.current_url, "page 1")
        ActionChains(browser).send_keys("u").perform()
        wait_for(browser, lambda: cards(browser)[2].get_attribute("data-reason") == "", "undo")
        assert "undone" in browser.find_element(By.ID, "status").text
    finally:
        kill(server)
    assert exclusions.read_marks(listed) == {ids[0]: "statue", ids[1]: "photo"}
    assert face_filter.read_id_list(str(listed)) == {ids[0], ids[1]}

    server = start_review(workdir, port)
    try:
        browser.refresh()  # type: ignore[attr-defined]
        shown = cards(browser)
        assert [c.get_attribute("data-reason") for c in shown] == ["statue", "photo"] + [""] * (PER_PAGE - 2)
        assert [c.find_element(By.CLASS_NAME, "mark").text for c in shown[:3]] == ["statue", "photo of a photo", ""]
        assert browser.find_element(By.ID, "count").text == "2"
    finally:
        kill(server)

    snakemake(workdir)
    assert not shard_faces(workdir) & {ids[0], ids[1]} and ids[2] in shard_faces(workdir)
    rejected = {r["face_id"]: r for r in fileio.read_jsonl(workdir / "results" / "filter" / "rejected.jsonl")}
    assert {i for i, r in rejected.items() if r["filter"] == "exclude"} == {ids[0], ids[1]}


def test_a_crafted_title_shows_as_text(workdir: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By

    port = free_port()
    server = start_review(workdir, port)
    try:
        browser.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
        card = next(c for c in cards(browser) if c.get_attribute("data-face") == "flickr:101#0")
        facts = dict(
            zip(
                [e.text for e in card.find_elements(By.TAG_NAME, "dt")],
                [e.text for e in card.find_elements(By.TAG_NAME, "dd")],
            )
        )
        assert facts["title"] == TITLE and facts["author"] == "<b>Mallory</b>"
        assert browser.execute_script("return window.pwned") is None  # type: ignore[attr-defined]
        assert not browser.find_elements(By.CSS_SELECTOR, "main script, img[src='x'], dd b")  # type: ignore[attr-defined]
    finally:
        kill(server)
