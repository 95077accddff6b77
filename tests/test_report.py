"""The report's pieces: training curves and snapshot sheet from a real (tiny) training run,
the metrics table from MetricResult files, the datasheet page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from stylegan import report
from stylegan.cli import main
from stylegan.errors import StageError
from stylegan.metrics import result
from stylegan.metrics.result import COMPUTED, NOT_COMPUTED, MetricResult
from tests.training import tiny, train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, small_manifest: Path) -> Path:
    """A real run: 0.2 kimg at 8² -> fade -> 16², a tick (log line and snapshot grid) every 40 images."""
    tmp = tmp_path_factory.mktemp("run")
    assert train(tiny(schedule={"image_snapshot_ticks": 1}), small_manifest, tmp / "run") == 0
    return tmp / "run"


def test_training_curves_plot_the_log(run: Path, tmp_path: Path) -> None:
    records = report.read_log(run / "log.jsonl")
    assert len(records) >= 4 and {r["resolution"] for r in records} == {8, 16}
    fig = report.curves_figure(records, "run")
    losses, r1, speed = fig.axes
    kimg = [r["kimg"] for r in records]
    for ax, keys in ((losses, ["loss_g", "loss_d"]), (r1, ["r1"]), (speed, ["sec_per_kimg"])):
        assert ax.get_ylabel()
        assert [list(line.get_xdata()) for line in ax.get_lines()[: len(keys)]] == [kimg] * len(keys)
        assert [list(line.get_ydata()) for line in ax.get_lines()[: len(keys)]] == [
            [r[k] for r in records] for k in keys
        ]
    assert "kimg" in speed.get_xlabel()
    assert main(["report", "curves", "--log", str(run / "log.jsonl"), "--out", str(tmp_path / "curves.png")]) == 0
    assert Image.open(tmp_path / "curves.png").size == (800, 800)


def test_log_of_a_resumed_run_keeps_the_later_tick_and_bad_lines_are_named(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    ticks = [
        {"tick": 1, "kimg": 1.0, "v": "first"},
        {"tick": 2, "kimg": 2.0, "v": "lost"},
        {"tick": 2, "kimg": 2.0, "v": "resumed"},
        {"tick": 3, "kimg": 3.0, "v": "resumed"},
    ]
    log.write_text("".join(json.dumps(t) + "\n" for t in ticks))
    assert [r["v"] for r in report.read_log(log)] == ["first", "resumed", "resumed"]
    log.write_text(log.read_text() + '{"tick": 4, "kim')  # torn by a kill mid-write: skipped
    assert len(report.read_log(log)) == 3
    log.write_text(log.read_text() + '\n{"kimg": 5.0}\n')
    with pytest.raises(StageError, match=r"log.jsonl: not a training log \(ValueError: .*line 5 is not valid JSON"):
        report.read_log(log)
    log.write_text('{"kimg": 5.0}\n')
    with pytest.raises(StageError, match=r"not a training log \(KeyError"):
        report.read_log(log)
    with pytest.raises(StageError, match="no training log"):
        report.read_log(tmp_path / "missing.jsonl")


def test_snapshot_sheet_spans_first_to_last(run: Path, tmp_path: Path) -> None:
    """Snapshots are named by whole kimg, so the tiny run's grid is copied to five kimg names."""
    real = sorted((run / "snapshots").glob("fakes*.png"))
    assert real
    grids = [tmp_path / "run" / "snapshots" / f"fakes{k:06d}.png" for k in (0, 2, 4, 10, 12)]
    grids[0].parent.mkdir(parents=True)
    for path in grids:
        path.write_bytes(real[-1].read_bytes())
    (grids[0].parent / "notes.png").write_bytes(b"")  # not a snapshot name: ignored
    assert report.pick_snapshots(tmp_path / "run", 3) == [(0, grids[0]), (4, grids[2]), (12, grids[4])]
    assert report.pick_snapshots(tmp_path / "run", 1) == [(12, grids[4])]
    assert [k for k, _ in report.pick_snapshots(tmp_path / "run", 100)] == [0, 2, 4, 10, 12]
    assert (
        main(
            [
                "report",
                "snapshots",
                "--run-dir",
                str(tmp_path / "run"),
                "--settings",
                '{"snapshots": 2}',
                "--out",
                str(tmp_path / "sheet.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "sheet.png").size[0] == 800
    with pytest.raises(StageError, match="no fakes"):
        report.pick_snapshots(tmp_path, 2)


def test_metrics_table_shows_computed_and_not_computed(tmp_path: Path) -> None:
    fid = MetricResult(
        metric="fid",
        status=COMPUTED,
        value=12.3456,
        snapshot="results/train/generator.pt",
        kimg=20.0,
        num_reals=60,
        num_fakes=1000,
        detector={"path": "/x/inception-2015-12-05.pt", "sha256": "f58cb9b6" + "0" * 56},
        seconds=81.25,
        device="cpu (x86_64)",
    )
    ppl = MetricResult(
        metric="ppl", status=COMPUTED, value={"z": 412.5, "w": 198.25}, snapshot="g.pt", kimg=20.0, num_fakes=100
    )
    kid = MetricResult(
        metric="kid",
        status=NOT_COMPUTED,
        value=None,
        snapshot="g.pt",
        kimg=20.0,
        reason="no <Inception> weights at /w.pt; set metrics.detector",
    )
    paths = []
    for r in (fid, ppl, kid):
        paths.append(tmp_path / f"{r.metric}.json")
        result.write(paths[-1], r)
    out = tmp_path / "metrics.html"
    assert main(["report", "metrics", "--results", *map(str, paths), "--out", str(out)]) == 0
    page = out.read_text()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in rows]
    assert cells[0] == list(report.COLUMNS)
    assert cells[1] == [
        "fid",
        "12.35",
        "computed",
        "60",
        "1,000",
        "results/train/generator.pt",
        "20",
        "inception-2015-12-05.pt (sha256 f58cb9b60000)",
        "81.2",
        "cpu (x86_64)",
    ]
    assert cells[2][:2] == ["ppl", "w: 198.2, z: 412.5"]  # named parts in the record's (sorted) order
    assert cells[3][:3] == ["kid", "—", "not computed: no &lt;Inception&gt; weights at /w.pt; set metrics.detector"]
    assert main(["report", "metrics", "--out", str(tmp_path / "empty.html")]) == 0
    assert "No metric results" in (tmp_path / "empty.html").read_text()


def test_datasheet_page_renders_tables_and_keeps_markup_as_text(tmp_path: Path) -> None:
    sheet = tmp_path / "datasheet.md"
    sheet.write_text(
        "# Datasheet\n\n| split | images |\n|---|---:|\n| train | 6 |\n\n"
        "| face | title |\n|---|---|\n| f1 | <script>alert(1)</script> |\n"
    )
    assert main(["report", "datasheet", "--datasheet", str(sheet), "--out", str(tmp_path / "d.html")]) == 0
    page = (tmp_path / "d.html").read_text()
    assert "<h1>Datasheet</h1>" in page and page.count("<table>") == 2 and "<td>train</td>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert main(["report", "datasheet", "--datasheet", str(tmp_path / "none.md"), "--out", "x.html"]) == 2
