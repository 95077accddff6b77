"""The crawl stage against a real Flickr-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flickr_server import FAULTS, FlickrServer, Photo, make_photos

from stylegan import fileio, settings
from stylegan.data.crawl import catalogue, download, flickr, folder, report
from stylegan.data.crawl.config import CrawlSettings
from stylegan.data.crawl.download import chunk_of
from stylegan.errors import StageError
from stylegan.settings import SettingsError

KEY = "SeCrEt-5f0e9c1d2b3a4f5e6d7c8b9a"
ROOT = Path(__file__).resolve().parents[1]
ALLOWED = (2, 4, 8, 9, 10)


def eligible_ids(photos: list[Photo]) -> set[str]:
    return {f"flickr:{p.id}" for p in photos if p.license in ALLOWED and "no_cv" not in p.tags.split()}


def crawl_config(server: FlickrServer, **flickr_overrides) -> dict:
    """A crawl section aimed at the local server, with tiny windows, pages and delays."""
    return {
        "source": "flickr",
        "chunks": 3,
        "workers": 4,
        "licenses": list(ALLOWED),
        "flickr": {
            "endpoint": server.endpoint,
            "min_upload_date": 1_299_000_000,
            "max_upload_date": 1_400_000_000,
            "per_page": 7,
            "window_cap": 20,
            "calls_per_hour": 3_600_000,
            "retries": 4,
            "backoff_s": 0.01,
            "timeout_s": 0.3,
            **flickr_overrides,
        },
        "download": {"retries": 2, "backoff_s": 0.01, "timeout_s": 0.3},
    }


@pytest.fixture
def server():
    with FlickrServer(make_photos(60), KEY) as fake:
        yield fake


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("FLICKR_API_KEY", KEY)


def run_crawl(config: dict, out: Path) -> list[dict]:
    """Catalogue, download every chunk, merge: the merged photo records."""
    crawl = settings.load(CrawlSettings, config, "crawl")
    catalogue.build(crawl, out / "catalogue.jsonl")
    chunk_files = []
    for chunk in range(crawl.chunks):
        chunk_files.append(out / f"chunks/{chunk:03d}.jsonl")
        download.download_chunk(crawl, out / "catalogue.jsonl", chunk, out / "store", chunk_files[-1])
    report.merge(chunk_files, out / "photos.jsonl", out / "report.json")
    return fileio.read_jsonl(out / "photos.jsonl")


def test_catalogue_bisects_pages_and_describes_each_photo(server, tmp_path):
    crawl = settings.load(CrawlSettings, crawl_config(server), "crawl")
    catalogue.build(crawl, tmp_path / "catalogue.jsonl")
    records = fileio.read_jsonl(tmp_path / "catalogue.jsonl")
    assert [r["photo_id"] for r in records] == sorted(eligible_ids(list(server.photos.values())))
    # 60 photos in one window exceed window_cap 20, so the window was split.
    assert server.api_calls["flickr.photos.search"] > 60 // 7
    no_original = [server.photos[r["source_id"]] for r in records if not server.photos[r["source_id"]].original]
    assert server.api_calls["flickr.photos.getSizes"] == len(no_original) > 0
    by_id = {r["source_id"]: r for r in records}
    for photo in server.photos.values():
        record = by_id.get(photo.id)
        if record:
            assert (record["width"], record["height"]) == (photo.width, photo.height)
            assert record["license_id"] == str(photo.license) and record["license_name"]
            assert record["page_url"] == f"https://www.flickr.com/photos/{photo.owner}/{photo.id}"
            assert record["source_url"].endswith("_o.jpg" if photo.original else "_b.jpg")
            assert record["date_uploaded"].endswith("Z") and record["owner_name"] == photo.ownername
            assert record["owner_id"] == photo.owner  # the NSID a takedown by owner matches
    assert not (tmp_path / ".catalogue.jsonl.journal").exists()


def test_interrupted_catalogue_resumes_from_its_window_journal(server, tmp_path):
    crawl = settings.load(CrawlSettings, crawl_config(server))
    out = tmp_path / "catalogue.jsonl"
    server.fail_after_calls = 25
    with pytest.raises(flickr.FlickrError, match="code 100"):
        catalogue.build(crawl, out)
    journalled = [r for entry in fileio.read_jsonl(tmp_path / ".catalogue.jsonl.journal") for r in entry["records"]]
    assert journalled and not out.exists()
    server.fail_after_calls = None
    catalogue.build(crawl, out)
    assert {r["photo_id"] for r in fileio.read_jsonl(out)} == eligible_ids(list(server.photos.values()))
    resized = [r["source_id"] for r in journalled if not server.photos[r["source_id"]].original]
    assert resized and all(server.sizes_calls[i] == 1 for i in resized), "a finished window was fetched again"
    assert not (tmp_path / ".catalogue.jsonl.journal").exists()


@pytest.mark.parametrize("fault", FAULTS)
def test_every_eligible_photo_exactly_once_under_fault(server, tmp_path, fault):
    server.stall_s = 0.6
    server.faults["api"].extend([fault, fault])
    server.faults["static"].extend([fault, fault])
    records = run_crawl(crawl_config(server), tmp_path)
    expected = eligible_ids(list(server.photos.values()))
    assert not server.faults["api"] and not server.faults["static"], "the faults were served"
    ids = [r["photo_id"] for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert all(r["status"] == "ok" and Path(r["path"]).is_file() for r in records)
    assert all(r["owner_id"] == server.photos[r["source_id"]].owner for r in records)  # kept through download
    assert {f"flickr:{i}" for i in server.downloads} == expected  # nothing ineligible fetched
    stored = {p.stem for p in (tmp_path / "store/flickr").iterdir()}
    assert {f"flickr:{s}" for s in stored} == expected


def test_retry_after_is_honoured(server, tmp_path):
    server.retry_after = "1"
    server.faults["api"].append("429")
    client = flickr.FlickrClient(settings.load(CrawlSettings, crawl_config(server)).flickr, KEY)
    began = time.monotonic()
    client.call("flickr.photos.getSizes", photo_id="1000")
    assert time.monotonic() - began >= 1.0 and not server.faults["api"]  # the 429 was served, then waited out


def test_rate_limit_spaces_calls(server):
    client = flickr.FlickrClient(settings.load(CrawlSettings, crawl_config(server, calls_per_hour=36_000)).flickr, KEY)
    began = time.monotonic()
    for _ in range(5):
        client.call("flickr.photos.getSizes", photo_id="1000")
    assert time.monotonic() - began >= 4 * 0.1


def test_permanent_error_fails_at_once_without_the_key(server):
    client = flickr.FlickrClient(settings.load(CrawlSettings, crawl_config(server)).flickr, "wrong-key")
    with pytest.raises(flickr.FlickrError, match="code 100"):
        client.call("flickr.photos.search", tags="x")
    assert server.api_calls["flickr.photos.search"] == 1
    server.echo_key_error = True
    with pytest.raises(flickr.FlickrError) as caught:
        flickr.FlickrClient(settings.load(CrawlSettings, crawl_config(server)).flickr, KEY).call("x.y")
    assert KEY not in str(caught.value) and "<api_key>" in str(caught.value)


def test_window_cap_reaches_past_4000_results(tmp_path):
    photos = [
        Photo(id=str(10_000 + n), license=4, dateupload=1_300_000_000 + n, width=9, height=9) for n in range(4500)
    ]
    with FlickrServer(photos, KEY) as fake:
        config = crawl_config(fake, per_page=500, window_cap=3000)
        catalogue.build(settings.load(CrawlSettings, config), tmp_path / "all.jsonl")
        assert len(fileio.read_jsonl(tmp_path / "all.jsonl")) == 4500
    same_second = [dataclass_replace(p, dateupload=1_300_000_000) for p in photos]
    with FlickrServer(same_second, KEY) as fake:
        # A generous timeout: a retried page (a 500-photo page slower than 0.3 s on a busy
        # machine) would add a search call and fail the count below for the wrong reason.
        config = crawl_config(fake, per_page=500, window_cap=3000, min_upload_date=1_300_000_000,
                              max_upload_date=1_300_000_000, timeout_s=10.0)  # fmt: skip
        catalogue.build(settings.load(CrawlSettings, config), tmp_path / "capped.jsonl")
        records = fileio.read_jsonl(tmp_path / "capped.jsonl")
        assert len(records) == 4000 == len({r["photo_id"] for r in records})
        assert fake.api_calls["flickr.photos.search"] == 1 + 7  # page 1, then pages 2..8 and no more


def dataclass_replace(photo: Photo, **changes) -> Photo:
    import dataclasses

    return dataclasses.replace(photo, **changes)


def test_ineligible_results_never_catalogued(server, tmp_path):
    server.leaky_licence = True  # the API ignores the licence filter
    config = crawl_config(server, tags=["portrait"], tag_mode="any")  # so -no_cv is not sent either
    crawl = settings.load(CrawlSettings, config)
    assert "-no_cv" not in flickr.search_params(crawl)["tags"]
    catalogue.build(crawl, tmp_path / "catalogue.jsonl")
    ids = {r["photo_id"] for r in fileio.read_jsonl(tmp_path / "catalogue.jsonl")}
    assert ids == eligible_ids(list(server.photos.values()))
    assert flickr.search_params(settings.load(CrawlSettings, crawl_config(server)))["tags"] == "-no_cv"


def test_licence_checked_again_before_download(server, tmp_path):
    crawl = settings.load(CrawlSettings, {**crawl_config(server), "chunks": 1})
    catalogue.build(crawl, tmp_path / "catalogue.jsonl")
    records = fileio.read_jsonl(tmp_path / "catalogue.jsonl")
    banned = next(p for p in server.photos.values() if p.license == 0)
    records.append(
        {
            **records[0],
            "photo_id": f"flickr:{banned.id}",
            "source_id": banned.id,
            "license_id": "0",
            "source_url": server.static_url(banned, "o"),
            "width": banned.width,
            "height": banned.height,
        }
    )
    fileio.write_jsonl(tmp_path / "catalogue.jsonl", records)
    download.download_chunk(crawl, tmp_path / "catalogue.jsonl", 0, tmp_path / "store", tmp_path / "000.jsonl")
    outcome = {r["photo_id"]: r for r in fileio.read_jsonl(tmp_path / "000.jsonl")}[f"flickr:{banned.id}"]
    assert outcome["status"] == "failed" and "allow-list" in outcome["reason"] and outcome["path"] is None
    assert server.downloads[banned.id] == 0
    assert not list((tmp_path / "store").rglob(f"{banned.id}*"))


def test_bad_files_are_quarantined_and_the_run_goes_on(server, tmp_path):
    eligible = sorted(eligible_ids(list(server.photos.values())))
    bad = {
        eligible[0].split(":")[1]: "short",
        eligible[1].split(":")[1]: "corrupt",
        eligible[2].split(":")[1]: "wrongsize",
    }
    server.bad_photos.update(bad)
    records = {r["photo_id"]: r for r in run_crawl(crawl_config(server), tmp_path)}
    reasons = {"short": "not a decodable image", "corrupt": "not a decodable image", "wrongsize": "catalogue says"}
    for photo_id, kind in bad.items():
        record = records[f"flickr:{photo_id}"]
        assert record["status"] == "failed" and reasons[kind] in record["reason"] and "quarantined" in record["reason"]
        assert server.downloads[photo_id] == 3  # 1 + retries
        assert not (tmp_path / f"store/flickr/{photo_id}.jpg").exists()
        assert (tmp_path / f"store/.quarantine/flickr/{photo_id}.jpg").is_file()
    assert sum(r["status"] == "ok" for r in records.values()) == len(eligible) - 3
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["failed"] == 3 and {f["photo_id"] for f in summary["failures"]} == {f"flickr:{i}" for i in bad}
    assert summary["quarantined"] == sorted(f"flickr:{i}" for i in bad)


def test_size_check_allows_exif_rotation(tmp_path):
    from PIL import Image

    for orientation in (1, 6):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.new("RGB", (60, 40)).save(tmp_path / f"{orientation}.jpg", exif=exif)
    download.verify(tmp_path / "1.jpg", 60, 40)
    download.verify(tmp_path / "6.jpg", 40, 60)  # stored 60x40, shown 40x60
    with pytest.raises(download.BadFile, match="catalogue says 40x60"):
        download.verify(tmp_path / "1.jpg", 40, 60)


# Chunks worked out by hand from the documented hash: the 8-byte BLAKE2b hex digest of the id, mod 7.
HAND_CHUNKS = {
    "flickr:1000": ("49d80c28b9d39e5c", 0),
    "flickr:52345678901": ("b4f8cdf880f97358", 2),
    "folder:demo_0000.jpg": ("cfc3d2ac18ae738f", 5),
    "folder:sub/ä.png": ("431e4dd09903e0f3", 6),  # UTF-8 bytes of the id
}


def test_chunk_of_fixed_ids_matches_the_documented_hash():
    for photo_id, (digest, chunk) in HAND_CHUNKS.items():
        assert int(digest, 16) % 7 == chunk  # the hand computation itself
        assert chunk_of(photo_id, 7) == chunk, photo_id


def test_chunk_of_is_the_same_in_processes_with_different_hash_seeds():
    """A salted `hash()` gives other chunks in each process; the downloaders run in separate jobs."""
    ids = [f"flickr:{n}" for n in range(200)]
    code = "from stylegan.data.crawl.download import chunk_of; print([chunk_of(f'flickr:{n}', 7) for n in range(200)])"
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        assert json.loads(out) == [chunk_of(i, 7) for i in ids], f"PYTHONHASHSEED={seed}"


def test_chunks_partition_the_catalogue():
    ids = [f"flickr:{n}" for n in range(1000)]
    counts = [sum(chunk_of(i, 4) == c for i in ids) for c in range(4)]
    assert sum(counts) == 1000 and min(counts) > 150
    assert [chunk_of(i, 4) for i in ids] == [chunk_of(i, 4) for i in ids]


def cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLICKR_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "stylegan.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


def test_kill_and_resume_downloads_nothing_twice(tmp_path):
    with FlickrServer(make_photos(120), KEY) as fake:
        config = {**crawl_config(fake), "chunks": 1, "workers": 2}
        catalogue.build(settings.load(CrawlSettings, config), tmp_path / "catalogue.jsonl")
        expected = eligible_ids(list(fake.photos.values()))
        fake.image_delay_s = 0.05
        args = ["crawl", "download", "--settings", json.dumps(config), "--catalogue", str(tmp_path / "catalogue.jsonl"),
                "--chunk", "0", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "000.jsonl")]  # fmt: skip
        journal = tmp_path / "store/.journal/000.jsonl"
        first = cli(*args)
        deadline = time.monotonic() + 30
        while len(fileio.read_jsonl(journal)) < len(expected) // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        complete = {r["source_id"] for r in fileio.read_jsonl(journal) if r["status"] == "ok"}
        complete |= {p.stem for p in (tmp_path / "store/flickr").iterdir()}
        assert 0 < len(complete) < len(expected) and not (tmp_path / "000.jsonl").exists()
        second = cli(*args)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 0, stderr
    records = fileio.read_jsonl(tmp_path / "000.jsonl")
    assert {r["photo_id"] for r in records} == expected and all(r["status"] == "ok" for r in records)
    assert all(fake.downloads[i] == 1 for i in complete), "a complete photo was downloaded again"
    assert sum(fake.downloads.values()) <= len(expected) + config["workers"]  # only in-flight ones twice
    assert len(list((tmp_path / "store/flickr").iterdir())) == len(expected)


def test_api_key_appears_in_no_output_and_no_log(server, tmp_path):
    server.faults["api"].extend(FAULTS)
    server.faults["static"].extend(["truncated", "500"])
    config = json.dumps(crawl_config(server, retries=len(FAULTS)))
    out = tmp_path / "out"
    steps = [
        ["-v", "crawl", "catalogue", "--settings", config, "--out", str(out / "catalogue.jsonl")],
        ["-v", "crawl", "download", "--settings", config, "--catalogue", str(out / "catalogue.jsonl"),
         "--chunk", "1", "--store", str(out / "store"), "--out", str(out / "001.jsonl")],
    ]  # fmt: skip
    logs = []
    for step in steps:
        process = cli(*step)
        stdout, stderr = process.communicate(timeout=60)
        logs.append(stdout + stderr)
        assert process.returncode == 0 and "retrying" in stderr, stderr
    server.echo_key_error = True
    failing = cli("crawl", "catalogue", "--settings", config, "--out", str(out / "never.jsonl"))
    stdout, stderr = failing.communicate(timeout=60)
    assert failing.returncode == 2 and "code 116" in stderr
    logs.append(stdout + stderr)
    assert all(KEY not in text for text in logs)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10 and not (out / "never.jsonl").exists()
    assert all(KEY.encode() not in p.read_bytes() for p in files)


def test_missing_api_key_is_a_clear_error(server, tmp_path, monkeypatch):
    monkeypatch.delenv("FLICKR_API_KEY")
    with pytest.raises(StageError, match="FLICKR_API_KEY is not set"):
        catalogue.build(settings.load(CrawlSettings, crawl_config(server)), tmp_path / "c.jsonl")


def test_flickr_limits_are_checked():
    with pytest.raises(SettingsError, match="crawl.flickr.window_cap"):
        settings.load(CrawlSettings, {"flickr": {"window_cap": 5000}}, "crawl")
    with pytest.raises(SettingsError, match="crawl.flickr.per_page"):
        settings.load(CrawlSettings, {"flickr": {"per_page": 501}}, "crawl")


# --- folder source -------------------------------------------------------------


def write_image(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 100, 50)).save(path)


def folder_config(root: Path, sidecar: Path | None) -> dict:
    return {"source": "folder", "chunks": 2, "workers": 2, "licenses": [4],
            "folder": {"path": str(root), "sidecar": str(sidecar) if sidecar else None},
            "download": {"retries": 1, "backoff_s": 0.01}}  # fmt: skip


def test_folder_with_sidecar(tmp_path):
    root = tmp_path / "mine"
    write_image(root / "a.jpg", (60, 40))
    write_image(root / "sub/b.png", (30, 50))
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    sidecar = tmp_path / "licenses.json"
    sidecar.write_text(json.dumps({"sub/b.png": {"license_id": "cc-by-4.0", "owner_name": "Ann", "title": "B"}}))
    records = {r["photo_id"]: r for r in run_crawl(folder_config(root, sidecar), tmp_path / "out")}
    assert set(records) == {"folder:a.jpg", "folder:sub/b.png", "folder:broken.jpg"}
    b = records["folder:sub/b.png"]
    assert (b["license_id"], b["owner_name"], b["title"], b["width"], b["height"]) == ("cc-by-4.0", "Ann", "B", 30, 50)
    assert records["folder:a.jpg"]["license_id"] == "unknown" and records["folder:a.jpg"]["owner_name"] is None
    assert records["folder:a.jpg"]["status"] == "ok"  # the Flickr allow-list does not filter a folder
    assert Path(b["path"]).read_bytes() == (root / "sub/b.png").read_bytes()
    assert (
        records["folder:broken.jpg"]["status"] == "failed" and "quarantined" in records["folder:broken.jpg"]["reason"]
    )


def test_folder_without_sidecar(tmp_path):
    write_image(tmp_path / "p/x.jpg", (20, 20))
    records = run_crawl(folder_config(tmp_path / "p", None), tmp_path / "out")
    assert [(r["photo_id"], r["license_id"], r["status"]) for r in records] == [("folder:x.jpg", "unknown", "ok")]


def test_folder_bad_sidecar_names_the_key(tmp_path):
    write_image(tmp_path / "p/x.jpg", (20, 20))
    (tmp_path / "s.json").write_text(json.dumps({"x.jpg": {"licence": "typo"}}))
    with pytest.raises(StageError, match="unknown key 'licence'"):
        folder.catalogue(settings.load(CrawlSettings, folder_config(tmp_path / "p", tmp_path / "s.json")).folder)
    with pytest.raises(StageError, match="is not a directory"):
        folder.catalogue(settings.load(CrawlSettings, folder_config(tmp_path / "nowhere", None)).folder)


# --- the embedded demo ---------------------------------------------------------


def test_demo_photos_hold_a_detectable_face(tmp_path, caplog):
    import dlib
    import numpy as np
    from PIL import Image

    from stylegan.data import demo

    caplog.set_level(logging.INFO)
    sidecar = tmp_path / "demo/licenses.json"
    entries = demo.make_photos(demo.DemoSettings(photos=12), 7, sidecar)
    assert json.loads(sidecar.read_text()) == entries and len(entries) == 12
    assert {e["license_id"] for e in entries.values()} == {"public-domain"}
    detector = dlib.get_frontal_face_detector()
    found, sizes, formats = 0, set(), set()
    for name in entries:
        with Image.open(sidecar.parent / name) as image:
            sizes.add(image.size)
            formats.add(image.format)
            found += len(detector(np.asarray(image.convert("RGB")), 1)) > 0
            assert 400 <= min(image.size) and max(image.size) <= 900
    assert found >= 0.8 * len(entries) and len(sizes) == 12 and formats == {"JPEG", "PNG"}
    first = {n: (sidecar.parent / n).read_bytes() for n in list(entries)[:2]}
    again = demo.make_photos(demo.DemoSettings(photos=2), 7, sidecar)  # same seed, fewer photos
    assert {p.name for p in sidecar.parent.iterdir()} == set(first) | {"licenses.json", "attributes.txt"}, (
        "stale photos removed"
    )
    assert all((sidecar.parent / n).read_bytes() == first[n] for n in again), "deterministic from the seed"


@pytest.mark.slow
def test_demo_dag_makes_catalogue_chunks_and_photos(tmp_path):
    """The default config's crawl part of the DAG, run by Snakemake in a scratch directory."""
    import shutil

    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
               "results/crawl/report.json"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "results/crawl/report.json").read_text())
    assert summary["ok"] == summary["photos"] == 12 and summary["by_license"] == {"public-domain": 12}
    assert len(list((tmp_path / "results/crawl/chunks").glob("*.jsonl"))) == 2
    for record in fileio.read_jsonl(tmp_path / "results/crawl/photos.jsonl"):
        assert (tmp_path / record["path"]).is_file() and not Path(record["path"]).is_absolute()
