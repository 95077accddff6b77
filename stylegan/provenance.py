"""From photo to model and back: which artefacts hold a face, and which are stale after a takedown.

Answers come from the files alone: the dataset versions pack records beside the
manifest (`stylegan.data.versions`: each version's faces by id and shard), the
dataset record in every generator file and checkpoint (`stylegan.train.lineage`),
and the generator provenance in every metric result and figure
(`stylegan.model.provenance.of_generator`). A generator is stale when a version it
trained on holds faces that the current dataset no longer does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.data import versions
from stylegan.data.manifest import Manifest
from stylegan.errors import StageError
from stylegan.metrics import result
from stylegan.model import files
from stylegan.model import provenance as model_provenance
from stylegan.train.lineage import fingerprints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Staleness:
    """What a generator trained on that the current dataset no longer holds."""

    trained_on: tuple[str, ...]  # dataset fingerprints, first to last
    removed: tuple[str, ...]  # face ids since removed
    dates: tuple[str, ...]  # when the versions that removed them were packed (UTC dates)
    unknown: tuple[str, ...]  # fingerprints trained on with no version record (packed before records were kept)

    def note(self) -> str | None:
        """The report's warning, or None when nothing it trained on has been removed."""
        if not self.removed:
            return None
        return (
            f"Trained on a dataset version that includes {len(self.removed)} face(s) since removed "
            f"(removed on {', '.join(self.dates)}); retrain to drop them (README: takedown requests)."
        )


class Datasets:
    """The dataset versions recorded beside a manifest, and which one the manifest describes now."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = Path(manifest)
        self.current = Manifest.read(manifest).fingerprint
        self.versions = {v.fingerprint: v for v in versions.all_versions(manifest)}
        if self.current not in self.versions:
            raise StageError(
                f"{manifest}: no record of this dataset version in {versions.folder_of(manifest)}; "
                "re-run `stylegan dataset pack` (it writes one)"
            )

    def staleness(self, dataset: dict[str, Any] | None) -> Staleness:
        """Which training faces of a generator's dataset record (`meta['dataset']`) the current version lacks,
        each dated by the first later version without it."""
        trained = fingerprints(dataset)
        known = [self.versions[f] for f in trained if f in self.versions]
        seen = set().union(*(v.face_ids("train") for v in known))
        removed = seen - self.versions[self.current].face_ids()
        last = max((v.date for v in known), default="")
        later = [v for v in self.versions.values() if v.date > last]  # oldest first, as all_versions
        dates = {next((v.date[:10] for v in later if face not in v.face_ids()), "unknown") for face in removed}
        return Staleness(
            tuple(trained),
            tuple(sorted(removed)),
            tuple(sorted(dates)),
            tuple(f for f in trained if f not in self.versions),
        )

    def holding(self, any_id: str) -> dict[str, list[dict[str, str]]]:
        """Per version fingerprint, the faces whose face, photo or owner id is `any_id`."""
        return {fp: found for fp, v in self.versions.items() if (found := v.matching(any_id))}


def generator_files(results: Path) -> Iterator[Path]:
    """Every generator file and checkpoint under `results` (the train rule's output, snapshots, checkpoints)."""
    yield from sorted(results.rglob("*.pt"))


def metric_results(results: Path) -> Iterator[tuple[Path, result.MetricResult]]:
    """Every metric result file under `results` (other JSON files are passed over)."""
    for path in sorted(results.rglob("*.json")):
        try:
            yield path, result.read(path)
        except StageError:
            continue


def figures(results: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """Every PNG under `results` that carries its generators' provenance."""
    for path in sorted(results.rglob("*.png")):
        found = model_provenance.png_provenance(path)
        if found is not None:
            yield path, found


def about_id(any_id: str, manifest: Path, results: Path) -> list[str]:
    """Lines answering "was this photo (face, owner) used?": shards, dataset versions, generators, results."""
    data = Datasets(manifest)
    holding = data.holding(any_id)
    current = holding.get(data.current, [])
    lines = [f"{any_id}: {len(current)} face(s) in the current dataset {data.current}"]
    lines += [f"  shard {shard}" for shard in sorted({f["shard"] for f in current})]
    lines.append(f"dataset versions that include it: {len(holding)}")
    lines += [f"  {fp} (packed {data.versions[fp].date}): {len(found)} face(s)" for fp, found in holding.items()]

    def included(dataset: dict[str, Any] | None) -> bool:
        return bool(set(fingerprints(dataset)) & set(holding))

    models = [p for p in generator_files(results) if included(files.load(p).get("dataset"))]
    lines.append(f"generator files and checkpoints trained on it: {len(models)}")
    lines += [f"  {p}" for p in models]
    metrics = [p for p, r in metric_results(results) if r.provenance and included(r.provenance["dataset"])]
    lines.append(f"metric results of those generators: {len(metrics)}")
    lines += [f"  {p}" for p in metrics]
    pictures = [p for p, tags in figures(results) if any(included(t["dataset"]) for t in tags)]
    lines.append(f"figures drawn from them: {len(pictures)}")
    lines += [f"  {p}" for p in pictures]
    return lines


def about_generator(generator: Path, manifest: Path, removed_out: Path | None) -> list[str]:
    """Lines answering "what did this generator train on, and what of it is gone?"; the removed face ids
    go to `removed_out` (one per line) and are never printed."""
    dataset = files.load(generator).get("dataset")
    if dataset is None:
        return [f"{generator}: written before generators recorded their dataset; its data is unknown"]
    data = Datasets(manifest)
    stale = data.staleness(dataset)
    lines = [
        f"{generator} (sha256 {fileio.sha256_file(generator)})",
        f"trained on dataset {dataset['fingerprint']} ({dataset['faces']} training faces)",
    ]
    lines += [
        f"  switched at {c['kimg']:g} kimg from {c['from'] or 'unknown data'} to {c['to']}" for c in dataset["changes"]
    ]
    lines += [f"  no version record of {fp}: which faces it held is unknown" for fp in stale.unknown]
    lines.append(
        f"current dataset {data.current}: {len(stale.removed)} of its faces since removed"
        + (f" (removed on {', '.join(stale.dates)})" if stale.removed else "")
    )
    if removed_out is not None:
        fileio.write_text(removed_out, "".join(f"{face}\n" for face in stale.removed))
        lines.append(f"their face ids: {removed_out}")
    elif stale.removed:
        lines.append("pass --removed-out FILE to list their face ids in a file")
    return lines


def stale_notes(dataset_records: list[dict[str, Any] | None], manifest: Path) -> list[str]:
    """The report's warnings for artefacts of these generators (one per distinct stale generator dataset)."""
    data = Datasets(manifest)
    notes = (data.staleness(d).note() for d in dataset_records if d is not None)
    return list(dict.fromkeys(n for n in notes if n))
