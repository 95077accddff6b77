"""The `stylegan` command: the only place that parses arguments.

Each workflow rule calls one sub-command; each sub-command is a thin call into
the library. Stage settings arrive as one JSON object (`--settings`), the rule's
section of `config.yaml`, so the library sees exactly what the workflow validated.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from stylegan.errors import StageError
from stylegan.settings import SettingsError

log = logging.getLogger("stylegan")

Handler = Callable[[argparse.Namespace], int | None]
# What `stylegan --help` says: the tool, for its users (the docstring above is for readers of this file).
DESCRIPTION = (
    "Build an FFHQ-style face dataset from photos, train StyleGAN on it and measure the generators; "
    "each step of the workflow is one sub-command."
)


def _command(sub: argparse._SubParsersAction, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """Add one sub-command whose handler receives the parsed namespace."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser


def _settings_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        default="{}",
        help="the stage's config section as JSON, or @file.json / @file.yaml",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylegan", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for add in (
        _add_demo,
        _add_crawl,
        _add_align,
        _add_filter,
        _add_review,
        _add_dataset,
        _add_train,
        _add_import,
        _add_summary,
        _add_metrics,
        _add_figures,
        _add_report,
        _add_config,
    ):
        add(groups)
    return parser


# --- demo ------------------------------------------------------------------


def _add_demo(groups: argparse._SubParsersAction) -> None:
    """`demo photos|face-labels`: the embedded demo's synthetic photos, and their labels carried to the faces."""
    demo = groups.add_parser("demo", help="the embedded offline demo").add_subparsers(dest="command", required=True)
    photos = _command(demo, "photos", _demo_photos, "make synthetic in-the-wild photos of a public-domain face")
    _settings_arg(photos)
    photos.add_argument("--seed", type=int, default=1, help="seed for every random choice")
    photos.add_argument("--sidecar", required=True, help="licence sidecar JSON; photos go in its directory")
    labels = _command(demo, "face-labels", _demo_face_labels, "carry the demo photos' attribute labels to their faces")
    labels.add_argument("--photo-labels", required=True, help="the photos' attributes.txt (written with the photos)")
    labels.add_argument("--faces", required=True, nargs="+", help="align's face records (JSONL), every chunk")
    labels.add_argument("--images", required=True, help="the folder of aligned faces (names are relative to it)")
    labels.add_argument("--out", required=True, help="attribute file over the aligned face images")


def _demo_photos(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import settings
    from stylegan.data import demo

    demo.make_photos(settings.load(demo.DemoSettings, args.settings, "demo"), args.seed, Path(args.sidecar))


def _demo_face_labels(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data import demo

    demo.face_labels(Path(args.photo_labels), [Path(p) for p in args.faces], Path(args.images), Path(args.out))


# --- crawl -----------------------------------------------------------------


def _add_crawl(groups: argparse._SubParsersAction) -> None:
    """`crawl catalogue|download|report`: list eligible photos, fetch one chunk, merge."""
    crawl = groups.add_parser("crawl", help="list and download photos").add_subparsers(dest="command", required=True)
    catalogue = _command(crawl, "catalogue", _crawl_catalogue, "list every eligible photo of the source")
    _settings_arg(catalogue)
    catalogue.add_argument("--out", required=True, help="catalogue JSONL to write")
    download = _command(crawl, "download", _crawl_download, "download one chunk of the catalogue, resumably")
    _settings_arg(download)
    download.add_argument("--catalogue", required=True, help="catalogue JSONL")
    download.add_argument("--chunk", required=True, type=int, help="chunk number (0 .. crawl.chunks-1)")
    download.add_argument("--store", required=True, help="photo store directory (kept across runs)")
    download.add_argument("--out", required=True, help="the chunk's photo records (JSONL)")
    report = _command(crawl, "report", _crawl_report, "merge chunk records and report failures")
    report.add_argument("--chunks", required=True, nargs="+", help="chunk JSONL files")
    report.add_argument("--photos", required=True, help="merged photo records (JSONL)")
    report.add_argument("--report", required=True, help="summary JSON: counts and failures")


def _crawl_settings(args: argparse.Namespace):
    from stylegan import settings
    from stylegan.data.crawl.config import CrawlSettings

    return settings.load(CrawlSettings, args.settings, "crawl")


def _crawl_catalogue(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data.crawl import catalogue

    catalogue.build(_crawl_settings(args), Path(args.out))


def _crawl_download(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data.crawl import download

    crawl = _crawl_settings(args)
    if not 0 <= args.chunk < crawl.chunks:
        raise StageError(f"--chunk: got {args.chunk}, expected 0..{crawl.chunks - 1} (crawl.chunks)")
    counts = download.download_chunk(crawl, Path(args.catalogue), args.chunk, Path(args.store), Path(args.out))
    log.info("chunk %03d: %d ok, %d failed of %d", args.chunk, counts["ok"], counts["failed"], counts["photos"])


def _crawl_report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data.crawl import report

    summary = report.merge([Path(p) for p in args.chunks], Path(args.photos), Path(args.report))
    log.info("crawl: %(ok)d photos ok, %(failed)d failed", summary)


# --- align -----------------------------------------------------------------


def _add_align(groups: argparse._SubParsersAction) -> None:
    """`align`: detect, landmark and align every face of one crawl chunk, resumably."""
    parser = _command(groups, "align", _align, "detect faces with dlib and align them as FFHQ did, one chunk")
    _settings_arg(parser)
    parser.add_argument("--photos", required=True, help="the chunk's photo records (crawl output JSONL)")
    parser.add_argument("--images", required=True, help="folder for aligned PNGs (a sub-folder per chunk)")
    parser.add_argument("--out", required=True, help="the chunk's face records (JSONL)")
    parser.add_argument("--report", required=True, help="the chunk's report JSON: counts and every failure's reason")


def _align(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import settings
    from stylegan.data.align import AlignSettings
    from stylegan.data.align_chunk import align_chunk

    align = settings.load(AlignSettings, args.settings, "align")
    align_chunk(align, Path(args.photos), Path(args.images), Path(args.out), Path(args.report))


# --- filter ----------------------------------------------------------------


def _add_filter(groups: argparse._SubParsersAction) -> None:
    """`filter`: quality filters, exclusion and opt-out lists over every align chunk."""
    parser = _command(groups, "filter", _filter, "keep the aligned faces that pass every filter")
    _settings_arg(parser)
    parser.add_argument("--faces", required=True, nargs="+", help="align chunk face records (JSONL)")
    parser.add_argument("--kept", required=True, help="face records that passed (JSONL)")
    parser.add_argument("--rejected", required=True, help="rejected face records with filter, value, threshold (JSONL)")
    parser.add_argument("--summary", required=True, help="counts per filter (TSV)")
    parser.add_argument("--sheets", required=True, help="folder for one contact sheet PNG per filter")


def _filter(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import settings
    from stylegan.data import filter as face_filter

    face_filter.run(
        settings.load(face_filter.FilterSettings, args.settings, "filter"),
        [Path(p) for p in args.faces],
        Path(args.kept),
        Path(args.rejected),
        Path(args.summary),
        Path(args.sheets),
    )


# --- review (the paper's human review, Appendix A) ---------------------------


def _add_review(groups: argparse._SubParsersAction) -> None:
    """`review`: the kept faces in a browser; a person's marks go into the exclusion list."""
    parser = _command(
        groups,
        "review",
        _review,
        "serve the filter's kept faces on 127.0.0.1 for a person to mark; marks go to filter.exclude",
    )
    parser.add_argument(
        "--config",
        default="config.yaml",
        help="the workflow's config (paths.results, the filter section, filter.exclude); run where snakemake runs",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--per-page", type=int, default=40, help="faces per page")


def _review(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data.review import server

    if args.per_page < 1:
        raise StageError(f"--per-page: got {args.per_page}, expected > 0")
    server.serve(Path(args.config), args.port, args.per_page)


# --- dataset (pack, verify, card) ------------------------------------------


def _add_dataset(groups: argparse._SubParsersAction) -> None:
    """`dataset pack|verify|card|provenance`: HDF5 shards, their check, the datasheet, and what holds a photo."""
    dataset = groups.add_parser("dataset", help="shards, verification, datasheet, provenance").add_subparsers(
        dest="command", required=True
    )
    pack = _command(dataset, "pack", _dataset_pack, "pack kept faces into multi-resolution HDF5 shards")
    _settings_arg(pack)
    pack.add_argument("--faces", required=True, help="kept face records (filter output JSONL)")
    pack.add_argument("--shards", required=True, help="shard folder (unchanged shards are kept)")
    pack.add_argument("--manifest", required=True, help="manifest JSON to write")
    verify = _command(dataset, "verify", _dataset_verify, "check every shard against the manifest")
    verify.add_argument("--manifest", required=True, help="manifest JSON")
    verify.add_argument("--out", required=True, help="report JSON; exit status 1 when any shard is wrong")
    verify.add_argument("--workers", type=int, default=1, help="processes checking shards at once")
    card = _command(dataset, "card", _dataset_card, "write the datasheet with the attribution list")
    card.add_argument("--manifest", required=True, help="manifest JSON")
    card.add_argument("--rejected", required=True, help="filter's rejected records (JSONL)")
    card.add_argument("--out", required=True, help="datasheet markdown to write")
    where = _command(
        dataset,
        "provenance",
        _dataset_provenance,
        "which shards, dataset versions, generators, metric results and figures hold a photo, or "
        "what a generator trained on and how much of it has since been removed",
    )
    asked = where.add_mutually_exclusive_group(required=True)
    asked.add_argument("--id", help="a photo, owner or face id (as in filter.optout and filter.exclude)")
    asked.add_argument("--generator", help="a generator file or training checkpoint")
    where.add_argument("--manifest", default="results/dataset/manifest.json", help="the current dataset's manifest")
    where.add_argument("--results", default="results", help="searched for generators, metric results and figures")
    where.add_argument(
        "--removed-out",
        default=None,
        help="with --generator: write the ids of its faces since removed here (never printed)",
    )


def _dataset_pack(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import settings
    from stylegan.data import pack

    pack.pack(
        settings.load(pack.PackSettings, args.settings, "pack"),
        Path(args.faces),
        Path(args.shards),
        Path(args.manifest),
    )


def _dataset_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stylegan.data import verify

    report = verify.verify(Path(args.manifest), Path(args.out), args.workers)
    if not report["ok"]:
        log.error("verify: %d problem(s) in %s; see %s", len(report["problems"]), args.manifest, args.out)
        return 1
    log.info("verify: %d shards, %d images, all match", report["shards"], report["images"])
    return 0


def _dataset_card(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.data import card

    card.write_card(Path(args.manifest), Path(args.rejected), Path(args.out))


def _dataset_provenance(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import provenance

    if args.id is not None:
        lines = provenance.about_id(args.id, Path(args.manifest), Path(args.results))
    else:
        lines = provenance.about_generator(
            Path(args.generator), Path(args.manifest), args.removed_out and Path(args.removed_out)
        )
    print("\n".join(lines))


# --- train (train, generate, export, summary) --------------------------------


def _add_train(groups: argparse._SubParsersAction) -> None:
    """`train`, `generate`, `export`: the model's training stage and what reads its output."""
    train = _command(
        groups, "train", _train, "train StyleGAN (resumes the run directory; under torchrun, one process per GPU)"
    )
    _settings_arg(train)
    train.add_argument("--manifest", required=True, help="dataset manifest JSON (dataset pack output)")
    train.add_argument("--run-dir", required=True, help="checkpoints, log.jsonl and snapshot grids (kept across runs)")
    train.add_argument("--out", required=True, help="final generator file (G_ema + network settings)")
    train.add_argument(
        "--continue-on-new-data",
        action="store_true",
        help="resume even if the manifest differs from the checkpoint's; the switch is recorded "
        "(as train.continue_on_new_data: true)",
    )
    generate = _command(groups, "generate", _generate, "images, a grid and a style-mixing grid from a generator")
    generate.add_argument("--checkpoint", required=True, help="generator file or training checkpoint")
    generate.add_argument("--seeds", default=None, help="latent seeds, e.g. 0-7,10 (default 0-7)")
    generate.add_argument("--latents", default=None, help="z from this .npy file [N, latent_size] instead of seeds")
    generate.add_argument(
        "--noise",
        choices=("random", "const"),
        default="random",
        help="random: noise maps drawn from --seed; const: the generator's stored maps",
    )
    generate.add_argument("--npy", default=None, help="write the raw float32 NCHW images to this .npy file")
    generate.add_argument(
        "--psi",
        type=float,
        default=None,
        help="truncation psi (1: none; default: the generator's train.network.truncation_psi)",
    )
    generate.add_argument(
        "--cutoff",
        type=int,
        default=None,
        help="truncate layers below this (default: the generator's train.network.truncation_cutoff)",
    )
    generate.add_argument("--seed", type=int, default=0, help="seed of the per-layer noise")
    generate.add_argument("--outdir", default=None, help="write one PNG per seed here")
    generate.add_argument("--grid", default=None, help="write all seeds as one grid PNG")
    generate.add_argument("--mixing-grid", default=None, help="write a style-mixing grid PNG (seeds x seeds)")
    generate.add_argument(
        "--mix-layers", default="0-3", help="layers copied from the column seed (default 0-3: coarse)"
    )
    export = _command(groups, "export", _export, "write G_ema's weights alone from a checkpoint")
    export.add_argument("--checkpoint", required=True, help="training checkpoint or generator file")
    export.add_argument("--out", required=True, help="generator file to write")


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from stylegan import settings
    from stylegan.train.config import TrainSettings
    from stylegan.train.loop import train

    s = settings.load(TrainSettings, args.settings, "train")
    if args.continue_on_new_data:
        s = dataclasses.replace(s, continue_on_new_data=True)
    return train(s, Path(args.manifest), Path(args.run_dir), Path(args.out))


def _generate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.model import generate

    if not (args.outdir or args.grid or args.mixing_grid or args.npy):
        raise StageError("generate: give at least one of --outdir, --grid, --mixing-grid, --npy")
    if args.latents and args.seeds:
        raise StageError("generate: give --seeds or --latents, not both")
    first, _, last = args.mix_layers.partition("-")
    if not (first.isdigit() and (last or first).isdigit()):
        raise StageError(f"--mix-layers {args.mix_layers!r}: expected a layer range such as 0-3")
    seeds = None if args.latents else generate.parse_seeds(args.seeds or "0-7")
    generate.generate(
        Path(args.checkpoint),
        seeds,
        args.psi,
        args.cutoff,
        args.seed,
        args.outdir and Path(args.outdir),
        args.grid and Path(args.grid),
        args.mixing_grid and Path(args.mixing_grid),
        (int(first), int(last or first)),
        latents_file=args.latents and Path(args.latents),
        noise=args.noise,
        npy=args.npy and Path(args.npy),
    )


def _export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.model import generate

    generate.export(Path(args.checkpoint), Path(args.out))


# --- import (networks published by others) -------------------------------------


def _add_import(groups: argparse._SubParsersAction) -> None:
    """`import nvidia`: NVIDIA's StyleGAN (v1) pickles as our files, without TensorFlow or their code."""
    sources = groups.add_parser("import", help="networks published by others as our files").add_subparsers(
        dest="command", required=True
    )
    nvidia = _command(
        sources,
        "nvidia",
        _import_nvidia,
        "a StyleGAN (v1) pickle of NVlabs/stylegan: a (G, D, Gs) snapshot, a generator or an "
        "attribute classifier (celebahq-classifier-NN-name.pkl)",
    )
    nvidia.add_argument("pickle", help="the .pkl file (read as data: none of its code runs)")
    nvidia.add_argument(
        "--out",
        required=True,
        help="folder for generator.pt (Gs), generator-training.pt (G), "
        "discriminator.pt (D) or classifier.pt, and nvidia.json (source, kind, arguments)",
    )


def _import_nvidia(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import fileio
    from stylegan.metrics import classifier
    from stylegan.model import nvidia

    source, out = Path(args.pickle), Path(args.out)
    imported = nvidia.import_networks(nvidia.read(source))
    if nvidia.kind(imported) == "classifier":
        written = {"classifier": classifier.save_nvidia(imported[0], source, out / nvidia.FILES["classifier"])}
    else:
        written = nvidia.write_networks(imported, out)
    fileio.write_json(out / nvidia.RECORD, nvidia.record(source, imported, written))


# --- summary (network parameter tables) ---------------------------------------


def _add_summary(groups: argparse._SubParsersAction) -> None:
    parser = _command(groups, "summary", _summary, "print the per-block parameter table and totals of G and D")
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="final resolution (default: the settings' resolution, 1024 = config F)",
    )
    parser.add_argument(
        "--settings", default="{}", help="the train.network config section as JSON, or @file.json / @file.yaml"
    )


def _summary(args: argparse.Namespace) -> None:
    import dataclasses

    from stylegan.model.networks import NetworkSettings
    from stylegan.settings import load
    from stylegan.train.summary import summary

    settings = load(NetworkSettings, args.settings, where="train.network")
    if args.resolution is not None:
        settings = dataclasses.replace(settings, resolution=args.resolution)
    print(summary(settings))


# --- figures and report -------------------------------------------------------


FIGURE_HELP = {  # one sub-command per figure of stylegan.metrics.figures.FIGURES
    "uncurated": "Fig. 2: an uncurated grid, truncated as the generator was configured",
    "style-mixing": "Fig. 3: style mixing, rows copying coarse, middle or fine styles",
    "stochastic": "Fig. 4: noise realisations of one latent and their per-pixel standard deviation",
    "noise": "Fig. 5: noise in all, no, fine only and coarse only layers",
    "truncation": "Fig. 8: the truncation trick over a sweep of psi",
}


def _add_figures(groups: argparse._SubParsersAction) -> None:
    """`figures uncurated|style-mixing|stochastic|noise|truncation`: the paper's Figs. 2, 3, 4, 5 and 8."""
    figures = groups.add_parser("figures", help="the paper's figures from a trained generator").add_subparsers(
        dest="command", required=True
    )
    for name, text in FIGURE_HELP.items():
        parser = _command(figures, name, _figure, text)
        parser.set_defaults(figure=name)
        _settings_arg(parser)  # the metrics.figures section
        parser.add_argument("--generator", required=True, help="generator file or training checkpoint")
        parser.add_argument("--out", required=True, help="PNG to write")


def _figure(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import settings
    from stylegan.metrics import figures
    from stylegan.metrics.config import FigureSettings

    s = settings.load(FigureSettings, args.settings, "metrics.figures")
    figures.write(args.figure, Path(args.generator), s, Path(args.out))


def _add_report(groups: argparse._SubParsersAction) -> None:
    """`report curves|snapshots|metrics|training-data|datasheet`: the report's plots and tables."""
    report = groups.add_parser(
        "report", help="training curves, snapshot sheet, metrics table, datasheet page"
    ).add_subparsers(dest="command", required=True)
    curves = _command(report, "curves", _report_curves, "plot losses, R1 and sec/kimg from a training log")
    curves.add_argument("--log", required=True, help="the run's log.jsonl")
    curves.add_argument("--out", required=True, help="PNG to write")
    snapshots = _command(report, "snapshots", _report_snapshots, "a sheet of snapshot grids from a training run")
    snapshots.add_argument("--run-dir", required=True, help="the training run directory (holds snapshots/)")
    _settings_arg(snapshots)  # the metrics.report section
    snapshots.add_argument("--out", required=True, help="PNG to write")
    table = _command(report, "metrics", _report_metrics, "one HTML table of metric result files")
    table.add_argument("--results", nargs="*", default=[], help="metric result JSON files")
    table.add_argument(
        "--manifest",
        default=None,
        help="the current dataset's manifest: warn when the generators trained on faces since removed",
    )
    table.add_argument("--out", required=True, help="HTML to write")
    data = _command(
        report,
        "training-data",
        _report_training_data,
        "the dataset a generator trained on, and whether faces of it have since been removed",
    )
    data.add_argument("--generator", required=True, help="generator file")
    data.add_argument("--manifest", required=True, help="the current dataset's manifest")
    data.add_argument("--out", required=True, help="HTML to write")
    datasheet = _command(report, "datasheet", _report_datasheet, "the datasheet as an HTML page")
    datasheet.add_argument("--datasheet", required=True, help="datasheet markdown (dataset card output)")
    datasheet.add_argument("--out", required=True, help="HTML to write")


def _report_curves(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import report

    report.training_curves(Path(args.log), Path(args.out))


def _report_snapshots(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import report, settings
    from stylegan.metrics.config import ReportSettings

    s = settings.load(ReportSettings, args.settings, "metrics.report")
    report.snapshot_sheet(Path(args.run_dir), s.snapshots, Path(args.out))


def _report_metrics(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import report

    report.metrics_table([Path(p) for p in args.results], Path(args.out), args.manifest and Path(args.manifest))


def _report_training_data(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import report

    report.training_data(Path(args.generator), Path(args.manifest), Path(args.out))


def _report_datasheet(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import report

    report.datasheet_html(Path(args.datasheet), Path(args.out))


# --- config (the schema file and README's table, from the settings) -------------


def _add_config(groups: argparse._SubParsersAction) -> None:
    """`config schema|table`: write the config's JSON schema and README's config table from the settings."""
    config = groups.add_parser("config", help="write the config schema and README's config table").add_subparsers(
        dest="command", required=True
    )
    schema = _command(config, "schema", _config_schema, "write the config's JSON schema from the settings")
    schema.add_argument("--out", default="workflow/schemas/config.schema.yaml", help="schema file to write")
    table = _command(config, "table", _config_table, "rewrite README's config table from the settings")
    table.add_argument("--readme", default="README.md", help="the README holding the table's markers")
    table.add_argument("--config", default="config.yaml", help="the config whose values the table shows")


def _config_schema(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import configdoc

    configdoc.write_schema(Path(args.out))


def _config_table(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan import configdoc

    configdoc.write_table(Path(args.readme), Path(args.config))


# --- metrics (FID, KID, the FID curve, PPL, LS) ---------------------------------


def _add_metrics(groups: argparse._SubParsersAction) -> None:
    """`metrics reals|shard|fid|curve`: real statistics, a shard of generated features, the merge, Fig. 7."""
    metrics = groups.add_parser("metrics", help="FID, KID, PPL and LS of trained generators").add_subparsers(
        dest="command", required=True
    )
    reals = _command(metrics, "reals", _metrics_reals, "Inception statistics of the training images (cached)")
    _settings_arg(reals)
    reals.add_argument("--manifest", required=True, help="dataset manifest JSON")
    level = reals.add_mutually_exclusive_group(required=True)
    level.add_argument("--resolution", type=int, help="image level: the model's final resolution")
    level.add_argument("--generator", help="or the generator file whose final resolution it is (evaluate.generator)")
    reals.add_argument("--cache", required=True, help="folder of cached statistics, one file per dataset and settings")
    reals.add_argument("--out", required=True, help="record JSON naming FID's statistics file")
    reals.add_argument("--kid-out", required=True, help="record JSON naming KID's statistics file")
    reals.add_argument(
        "--train-xflip",
        required=True,
        choices=("true", "false"),
        help="train.xflip: FID's reals are mirrored as training was unless metrics.reals.xflip says",
    )
    shard = _command(metrics, "shard", _metrics_shard, "features of one shard of a metric's generated images")
    _shard_args(shard, "partial statistics (.npz)")
    shard.add_argument("--stream", required=True, help="fid, or mix2/mix3/mix4 (latents mixed at test time)")
    fid = _command(metrics, "fid", _metrics_fid, "merge a metric's shards into its FID (and KID) result")
    _settings_arg(fid)
    fid.add_argument("--generator", required=True, help="the generator the shards were computed from")
    fid.add_argument("--reals", required=True, help="record JSON from `metrics reals`")
    fid.add_argument("--partials", required=True, nargs="+", help="every shard's partial statistics")
    fid.add_argument("--out", required=True, help="FID result JSON")
    fid.add_argument("--kid-reals", default=None, help="KID's record JSON from `metrics reals` (with --kid-out)")
    fid.add_argument("--kid-out", default=None, help="also write KID of the same generated features to this JSON")
    curve = _command(metrics, "curve", _metrics_curve, "FID of every kept training snapshot, plotted")
    _settings_arg(curve)
    curve.add_argument("--reals", required=True, help="record JSON from `metrics reals`")
    curve.add_argument("--run-dir", required=True, help="training run directory (its generators/ snapshots)")
    curve.add_argument("--folder", required=True, help="one result JSON per snapshot (kept: a rerun resumes)")
    curve.add_argument("--out", required=True, help="curve data JSON (points and the lowest FID)")
    curve.add_argument("--plot", required=True, help="curve PNG")
    curve.add_argument("--lowest", required=True, help="result JSON of the lowest FID over training")
    curve.add_argument(
        "--vgg16",
        required=True,
        help="torchvision's vgg16-397923af.pth: PPL beside FID when it is there, 'not computed' in the plot otherwise",
    )
    _add_ppl_ls(metrics)


def _add_ppl_ls(metrics: argparse._SubParsersAction) -> None:
    """`metrics vgg16|ppl-shard|ppl|classifier|ls-shard|ls`: perceptual path length and linear separability."""
    vgg = _command(metrics, "vgg16", _metrics_vgg16, "download torchvision's VGG16 weights for the path length")
    vgg.add_argument("--out", required=True, help="where to save vgg16-397923af.pth (checked by sha256)")
    shard = _command(metrics, "ppl-shard", _metrics_ppl_shard, "path-length distances of one shard of one variant")
    _shard_args(shard, "partial distances (.npz)")
    shard.add_argument("--vgg16", required=True, help="torchvision's vgg16-397923af.pth")
    shard.add_argument("--variant", required=True, help="z_full, z_end, w_full or w_end")
    ppl = _command(metrics, "ppl", _metrics_ppl, "merge the path-length shards into the PPL result")
    _settings_arg(ppl)
    ppl.add_argument("--generator", required=True, help="the generator the shards were computed from")
    ppl.add_argument("--vgg16", required=True, help="the VGG16 file (named in the result when it is missing)")
    ppl.add_argument("--partials", nargs="*", default=[], help="every variant's shards; none: not computed")
    ppl.add_argument("--out", required=True, help="PPL result JSON")
    train = _command(metrics, "classifier", _metrics_classifier, "train one attribute classifier")
    _settings_arg(train)
    train.add_argument("--attribute", required=True, help="attribute name, as in the attribute file's header")
    train.add_argument("--faces", required=True, help="folder of labelled face images")
    train.add_argument("--attributes-file", required=True, help="labels in CelebA's list_attr_celeba.txt format")
    train.add_argument("--mapping-file", default=None, help="CelebA-HQ-to-CelebA name mapping, if any")
    train.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed")
    train.add_argument("--workers", type=int, default=0, help="processes reading the images")
    train.add_argument("--out", required=True, help="classifier file (.pt)")
    ls_shard = _command(metrics, "ls-shard", _metrics_ls_shard, "z, w and classifier logits of one shard")
    _shard_args(ls_shard, "partial rows (.npz)")
    ls_shard.add_argument("--classifiers", required=True, nargs="+", help="one trained classifier per attribute")
    ls = _command(metrics, "ls", _metrics_ls, "merge the separability shards, fit the SVMs, write the LS result")
    _settings_arg(ls)
    ls.add_argument("--generator", required=True, help="the generator the shards were computed from")
    ls.add_argument("--partials", nargs="*", default=[], help="every shard's rows; none: not computed, and why")
    ls.add_argument("--workers", type=int, default=1, help="SVM fits at once (one CPU each)")
    ls.add_argument("--out", required=True, help="LS result JSON")


def _shard_args(parser: argparse.ArgumentParser, out_help: str) -> None:
    """What every metric shard takes: settings, the generator, the shard number, the partial to write."""
    _settings_arg(parser)
    parser.add_argument("--generator", required=True, help="generator file or training checkpoint")
    parser.add_argument("--shard", required=True, type=int, help="shard number (0 .. metrics.shards-1)")
    parser.add_argument("--out", required=True, help=out_help)


def _metrics_settings(args: argparse.Namespace):
    from stylegan import settings
    from stylegan.metrics.config import MetricsSettings

    return settings.load(MetricsSettings, args.settings, "metrics")


def _metrics_reals(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import fid
    from stylegan.model.files import load_generator
    from stylegan.model.sampling import inference_device

    resolution = args.resolution or load_generator(Path(args.generator))[0].settings.resolution
    fid.reals(
        _metrics_settings(args),
        Path(args.manifest),
        resolution,
        Path(args.cache),
        Path(args.out),
        Path(args.kid_out),
        args.train_xflip == "true",
        inference_device(),
    )


def _metrics_shard(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import fid
    from stylegan.model.sampling import inference_device

    fid.shard(
        _metrics_settings(args), Path(args.generator), args.stream, args.shard, Path(args.out), inference_device()
    )


def _metrics_fid(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import fid

    fid.result(
        _metrics_settings(args),
        Path(args.generator),
        Path(args.reals),
        [Path(p) for p in args.partials],
        Path(args.out),
        args.kid_out and (Path(args.kid_reals), Path(args.kid_out)),
    )


def _metrics_curve(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import fid
    from stylegan.model.sampling import inference_device

    fid.curve(
        _metrics_settings(args),
        Path(args.reals),
        Path(args.run_dir),
        Path(args.folder),
        Path(args.out),
        Path(args.plot),
        Path(args.lowest),
        inference_device(),
        Path(args.vgg16),
    )


def _metrics_vgg16(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import lpips_vgg

    lpips_vgg.download(Path(args.out))


def _metrics_ppl_shard(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import ppl
    from stylegan.model.sampling import inference_device

    ppl.shard(
        _metrics_settings(args),
        Path(args.generator),
        Path(args.vgg16),
        args.variant,
        args.shard,
        Path(args.out),
        inference_device(),
    )


def _metrics_ppl(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import ppl

    ppl.result(
        _metrics_settings(args),
        Path(args.generator),
        Path(args.vgg16),
        [Path(p) for p in args.partials],
        Path(args.out),
    )


def _metrics_classifier(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import classifier
    from stylegan.model.sampling import inference_device

    faces = classifier.labelled_faces(
        Path(args.faces), Path(args.attributes_file), args.mapping_file and Path(args.mapping_file), args.attribute
    )
    classifier.train(
        _metrics_settings(args).ls, faces, args.attribute, args.seed, Path(args.out), inference_device(), args.workers
    )


def _metrics_ls_shard(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import ls
    from stylegan.model.sampling import inference_device

    ls.shard(
        _metrics_settings(args),
        Path(args.generator),
        [Path(p) for p in args.classifiers],
        args.shard,
        Path(args.out),
        inference_device(),
    )


def _metrics_ls(args: argparse.Namespace) -> None:
    from pathlib import Path

    from stylegan.metrics import ls

    ls.result(
        _metrics_settings(args), Path(args.generator), [Path(p) for p in args.partials], Path(args.out), args.workers
    )


def _threads_from_omp() -> None:
    """Let OMP_NUM_THREADS decide torch's CPU threads before torch loads.

    Snakemake exports MKL_NUM_THREADS as a rule's `threads` (1 unless the rule says), and
    torch's CPU convolutions follow it, so a job given OMP_NUM_THREADS=n ran on one thread.
    """
    if "OMP_NUM_THREADS" in os.environ:
        os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]


def main(argv: Sequence[str] | None = None) -> int:
    _threads_from_omp()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args) or 0
    except (StageError, SettingsError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
