"""The pieces of the workflow's report that are not figures of the paper.

Training curves from the run's `log.jsonl`, a sheet of the snapshot grids written
during training, the metrics table (one row per MetricResult file), the
training data's provenance (stale after a takedown) and the datasheet as HTML.
Snakemake's report shows PNG and HTML inline and offers other files only as
downloads, hence HTML for the tables.
"""

from __future__ import annotations

import html
import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics import result
from stylegan.metrics.result import MetricResult

log = logging.getLogger(__name__)

SNAPSHOT = re.compile(r"fakes(\d+)\.png")  # the training loop's image snapshots, named by kimg


def read_log(path: Path) -> list[dict[str, Any]]:
    """Tick records in kimg order. A resumed run logs the ticks after its checkpoint again; the later
    record of a tick wins, as it belongs to the run that went on. A torn last line is skipped."""
    if not path.is_file():
        raise StageError(f"{path}: no training log; train first (the train rule writes it in its run directory)")
    try:
        ticks = {int(record["tick"]): record for record in fileio.read_jsonl(path)}
    except (ValueError, KeyError, TypeError) as err:
        raise StageError(f"{path}: not a training log ({type(err).__name__}: {err})") from None
    if not ticks:
        raise StageError(f"{path}: the training log is empty; train longer than one tick")
    return sorted(ticks.values(), key=lambda r: r["kimg"])


def _png(fig: Any) -> bytes:
    """A matplotlib figure rendered by the Agg backend (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def curves_figure(records: Sequence[dict[str, Any]], title: str) -> Any:
    """Losses of G and D, the R1 penalty and seconds per kimg over kimg, the resolution changes marked."""
    from matplotlib.figure import Figure

    kimg = [r["kimg"] for r in records]
    fig = Figure(figsize=(8, 8), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    panels = [(("loss_g", "G loss"), ("loss_d", "D loss")), (("r1", "R1 penalty"),), (("sec_per_kimg", "sec/kimg"),)]
    labels = ["loss (mean over the tick)", "R1 penalty", "seconds per kimg"]
    for ax, lines, label in zip(axes, panels, labels):
        for key, name in lines:
            ax.plot(kimg, [r[key] for r in records], marker=".", label=name)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    for previous, record in zip(records, records[1:]):
        if record["resolution"] != previous["resolution"]:  # the level changed between these two ticks
            between = (previous["kimg"] + record["kimg"]) / 2
            for ax in axes:
                ax.axvline(between, color="grey", linestyle=":")
            axes[0].annotate(
                f"{record['resolution']}²",
                (between, 1),
                xycoords=("data", "axes fraction"),
                va="top",
                ha="left",
                color="grey",
            )
    axes[-1].set_xlabel("training progress (kimg: thousands of real images shown)")
    axes[0].set_title(title)
    return fig


def training_curves(log_path: Path, out: Path) -> None:
    """The curves of a run's log as a PNG."""
    records = read_log(log_path)
    title = f"Training of {log_path.parent}: {len(records)} ticks to {records[-1]['kimg']:.1f} kimg"
    fileio.write_bytes(out, _png(curves_figure(records, title)))
    log.info("wrote %s (%d ticks)", out, len(records))


def pick_snapshots(run_dir: Path, count: int) -> list[tuple[int, Path]]:
    """Up to `count` snapshot grids, (kimg, path), evenly spaced from the first to the last."""
    found = sorted(
        (int(m[1]), p) for p in (run_dir / "snapshots").glob("fakes*.png") if (m := SNAPSHOT.fullmatch(p.name))
    )
    if not found:
        raise StageError(f"{run_dir}/snapshots: no fakes*.png snapshot grids; train first")
    if count == 1 or len(found) <= count:
        return found[-count:]
    return [found[round(i * (len(found) - 1) / (count - 1))] for i in range(count)]


def snapshot_sheet(run_dir: Path, count: int, out: Path) -> None:
    """The chosen snapshot grids one above the other, each titled with its kimg."""
    from matplotlib.figure import Figure
    from PIL import Image

    chosen = pick_snapshots(run_dir, count)
    images = [Image.open(path).convert("RGB") for _, path in chosen]
    width, height = images[0].size
    fig = Figure(figsize=(8, len(images) * (8 * height / width + 0.4)), layout="constrained")
    axes = fig.subplots(len(images), 1, squeeze=False)[:, 0]
    for ax, (kimg, _), image in zip(axes, chosen, images):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"{kimg} kimg")
        ax.set_axis_off()
    fileio.write_bytes(out, _png(fig))
    log.info("wrote %s (snapshots at %s kimg)", out, ", ".join(str(k) for k, _ in chosen))


def _page(title: str, body: str) -> str:
    """A small standalone HTML page (the report embeds it as it is)."""
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left}th{background:#eee}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def format_value(value: float | dict[str, float] | None) -> str:
    """A metric's value for the table: 4 significant digits; named parts as 'name: value'."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{name}: {part:.4g}" for name, part in value.items())
    return f"{value:.4g}"


COLUMNS = ("metric", "value", "status", "reals", "fakes", "snapshot", "kimg", "detector", "seconds", "device")


def table_row(r: MetricResult) -> list[str]:
    """One result as the table's cells, in COLUMNS order; a not-computed one says why."""
    status = r.status if r.reason is None else f"{r.status}: {r.reason}"
    detector = (
        "—"
        if not r.detector
        else f"{Path(r.detector.get('path', '')).name} (sha256 {r.detector.get('sha256', '')[:12]})"
    )
    return [
        r.metric,
        format_value(r.value),
        status,
        "—" if r.num_reals is None else f"{r.num_reals:,}",
        "—" if r.num_fakes is None else f"{r.num_fakes:,}",
        r.snapshot,
        "—" if r.kimg is None else f"{r.kimg:g}",
        detector,
        "—" if r.seconds is None else f"{r.seconds:.1f}",
        r.device or "—",
    ]


def stale_banner(datasets: Sequence[dict[str, Any] | None], manifest: Path | None) -> str:
    """On top of a page: a warning per generator whose training data has since lost faces (a takedown)."""
    from stylegan import provenance  # here: it reads generator files, which needs torch

    notes = [] if manifest is None else provenance.stale_notes(list(datasets), manifest)
    return "".join(f'<p style="color:#a00"><strong>{html.escape(n)}</strong></p>\n' for n in notes)


def metrics_table(paths: Sequence[Path], out: Path, manifest: Path | None = None) -> None:
    """The metrics table as HTML: every result file as one row, computed or not; with the current
    `manifest`, a warning on top when the evaluated generators trained on faces since removed."""
    results = [result.read(p) for p in paths]
    rows = [table_row(r) for r in results]
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>\n" for row in rows)
    note = "" if rows else "<p>No metric results.</p>"
    banner = stale_banner([r.provenance["dataset"] for r in results if r.provenance], manifest)
    table = f"<h1>Metrics</h1>\n{banner}<table>\n<tr>{head}</tr>\n{body}</table>{note}"
    fileio.write_text(out, _page("Metrics", table))
    log.info("wrote %s (%d results)", out, len(rows))


def training_data(generator: Path, manifest: Path, out: Path) -> None:
    """The training section's provenance page: the dataset the generator trained on, each switch to
    other data, and on top a warning when faces it trained on have since been removed."""
    from stylegan.model import files

    dataset = files.load(generator).get("dataset")
    if dataset is None:
        body = "<p>This generator was written before generators recorded their dataset.</p>"
    else:
        body = stale_banner([dataset], manifest)
        body += f"<p>Trained on dataset {dataset['fingerprint']} ({dataset['faces']:,} training faces).</p>\n"
        body += "".join(
            f"<p>At {c['kimg']:g} kimg the run switched from {c['from'] or 'unknown data'} to "
            f"{c['to']} ({c['faces']:,} faces).</p>\n"
            for c in dataset["changes"]
        )
    fileio.write_text(out, _page("Training data", f"<h1>Training data</h1>\n{body}"))
    log.info("wrote %s", out)


def datasheet_html(markdown_path: Path, out: Path) -> None:
    """The datasheet (markdown) as an HTML page, its tables as tables."""
    import markdown

    if not markdown_path.is_file():
        raise StageError(f"{markdown_path}: no datasheet; run the dataset_card rule first")
    # Escaped first: titles and authors come from photo pages, and raw HTML in them must stay text.
    body = markdown.markdown(html.escape(markdown_path.read_text(), quote=False), extensions=["tables"])
    fileio.write_text(out, _page("Datasheet", body))
    log.info("wrote %s", out)
