"""FID and KID (Table 1), FID with latents mixed at test time (Table 2), FID over training (Fig. 7).

Fakes as SG1's fid50k (NVlabs/stylegan `metrics/frechet_inception_distance.py`):
z ~ N(0, I), no truncation, fresh noise, round-and-clamp to uint8. A snapshot
saved while growing renders at its level and is nearest-upscaled to the final
resolution, as SG1's generator outputs a lower level of detail; the reals are
always the training split at the final resolution.

A metric runs as shards (`shard`) whose partial statistics a merge (`result`)
turns into one MetricResult per metric; the curve evaluates every kept snapshot
in one job and resumes from the snapshots already done.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics import result as mr
from stylegan.metrics.config import MetricsSettings, mixing_stream
from stylegan.metrics.inception import FEATURES, Inception
from stylegan.metrics.shards import Block, partial_meta, shard_blocks
from stylegan.metrics.stats import FeatureStats, merge_partials
from stylegan.model import files, provenance
from stylegan.model.files import load_generator
from stylegan.model.networks import Generator, layers_at
from stylegan.model.sampling import at_final_resolution, full_float32, to_uint8
from stylegan.settings import as_dict

log = logging.getLogger(__name__)


# --- the distances -------------------------------------------------------------


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, samples2: np.ndarray | None = None
) -> float:
    """‖μ1-μ2‖² + Tr(Σ1 + Σ2 - 2 sqrtm(Σ1 Σ2)), real part, as SG1 computes it with scipy's sqrtm
    (NVlabs/stylegan `metrics/frechet_inception_distance.py`; SciPy 1.16 deprecated its disp=False).

    `samples2`, set 2's features when there are no more of them than dimensions,
    gives the same trace from sqrtm of the small symmetric matrix Bᵀ Σ1 B, where
    Σ2 = B Bᵀ (B: the centred samples / √(n-1)): Σ1 Σ2 and Bᵀ Σ1 B share their
    non-zero eigenvalues. sqrtm of the singular 2048² product is ill-conditioned and
    takes minutes on a CPU; with the paper's 50,000 samples this branch never runs.
    """
    if samples2 is not None and len(samples2) <= len(mu2):
        b = (samples2.astype(np.float64) - mu2) / np.sqrt(len(samples2) - 1)
        trace = checked_root_trace(b @ sigma1 @ b.T)
    else:
        trace = checked_root_trace(sigma1 @ sigma2)
    value = float(np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace)
    if not np.isfinite(value):
        raise FidError(f"the distance is {value} (non-finite feature statistics)")
    return value


class FidError(StageError):
    """A Fréchet distance that cannot be trusted, and why: a curve records it, a final FID stops on it."""


SQRTM_IMAG_TOL = 1e-3  # |imaginary part| of sqrtm's diagonal, relative to its trace's real part


def checked_root_trace(product: np.ndarray) -> float:
    """Tr sqrtm(product), after checking the root: finite, and its diagonal's imaginary part (which SG1 drops
    with np.real) small beside the trace; a root that fails is a FidError saying how, never a NaN."""
    root = scipy.linalg.sqrtm(product)
    if not np.isfinite(root).all():
        raise FidError(
            f"sqrtm(Σ1 Σ2) has {int((~np.isfinite(root)).sum())} non-finite entries "
            "(degenerate features, e.g. a collapsed generator)"
        )
    trace = np.trace(root)
    imaginary = float(np.abs(np.diagonal(root).imag).sum())
    if imaginary > SQRTM_IMAG_TOL * max(abs(trace.real), 1.0):
        raise FidError(
            f"sqrtm(Σ1 Σ2) has a diagonal imaginary part {imaginary:.3g} against a trace of "
            f"{trace.real:.6g} (beyond {SQRTM_IMAG_TOL:g} of it): the product is far from PSD"
        )
    return float(trace.real)


def fid_of(fakes: FeatureStats, reals: FeatureStats) -> float:
    """FID of two feature sets; a set with fewer samples than features (and all of them kept) takes the
    small-matrix route of `frechet_distance`."""
    small = [s for s in (reals, fakes) if s.count <= FEATURES and len(s.kept) == s.count]
    if not small:
        return frechet_distance(fakes.mean(), fakes.cov(), reals.mean(), reals.cov())
    two = min(small, key=lambda s: s.count)
    one = fakes if two is reals else reals
    return frechet_distance(one.mean(), one.cov(), two.mean(), two.cov(), two.kept)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int, seed: int) -> float:
    """Unbiased MMD² with the kernel (x·y/d + 1)³, averaged over random subsets
    (NVlabs/stylegan2-ada-pytorch `metrics/kernel_inception_distance.py`), in float64."""
    d = real.shape[1]
    m = min(len(real), len(fake), subset_size)
    if m < 2:
        raise StageError(f"KID needs at least 2 real and 2 generated samples, got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = fake[rng.choice(len(fake), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / subsets / m)


# --- generated images ------------------------------------------------------------


def stream_plan(s: MetricsSettings, stream: str) -> tuple[int, int]:
    """(latents per image, samples) of a named sample stream: fid, curve, or mix2 .. mix4."""
    if stream == "fid":
        return 1, s.fid.num_fakes
    if stream == "curve":
        return 1, s.curve.num_fakes
    mixed = {mixing_stream(n): n for n in s.mixing.latents}
    if stream in mixed:
        return mixed[stream], s.mixing.num_fakes
    raise StageError(
        f"metric stream {stream!r}: expected fid, curve or mix<n> with n in metrics.mixing.latents "
        f"{list(s.mixing.latents)}"
    )


def mixed_ws(G: Generator, z: torch.Tensor, res: int, gen: torch.Generator) -> torch.Tensor:
    """Per-layer w [N, layers, dlatent] from z [N, k, latent]: k latents, k-1 distinct random
    crossover points among the layers active at `res`, drawn per image (Table 2)."""
    n, k, _ = z.shape
    w = G.map(z.reshape(n * k, -1)).reshape(n, k, -1)
    if k == 1:
        return w.expand(n, G.num_layers, w.shape[-1])
    active = layers_at(res)
    if active - 1 < k - 1:
        raise StageError(f"mixing {k} latents needs {k} active layers, the {res}² generator has {active}")
    points = torch.rand(n, active - 1, generator=gen).argsort(dim=1)[:, : k - 1] + 1  # in 1 .. active-1
    layer = torch.arange(G.num_layers)
    source = (layer.reshape(1, -1, 1) >= points.reshape(n, 1, -1)).sum(-1).to(w.device)  # latent of each layer
    return torch.gather(w, 1, source.unsqueeze(-1).expand(n, G.num_layers, w.shape[-1]))


@torch.no_grad()
def fake_images(G: Generator, meta: dict[str, Any], block: Block, latents: int) -> torch.Tensor:
    """The block's generated images as uint8 at the model's final resolution.

    z and the crossover points come from a generator seeded by the block; the noise
    maps from torch's global generator, seeded by the block too.
    """
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(block.seed)
    z = torch.randn(block.count, latents, G.settings.latent_size, generator=gen)
    ws = mixed_ws(G, z.to(device), meta["resolution"], gen)
    torch.manual_seed(block.seed)
    images = to_uint8(G.synthesize(ws, res=meta["resolution"], alpha=meta["alpha"], noise="random").float())
    return at_final_resolution(images, G)


@full_float32()
def fake_stats(
    G: Generator, meta: dict[str, Any], detector: Inception, blocks: list[Block], latents: int, keep: int
) -> FeatureStats:
    """Feature statistics of the blocks' generated images, in sample order."""
    stats = FeatureStats(keep=keep)
    for block in blocks:
        stats.add(detector(fake_images(G, meta, block, latents)))
    return stats


def stream_settings(s: MetricsSettings, stream: str, generator: Path) -> dict[str, Any]:
    """What a stream's samples depend on; partials and results record it."""
    latents, num = stream_plan(s, stream)
    return {
        "stream": stream,
        "latents": latents,
        "num_fakes": num,
        "batch": s.batch,
        "seed": s.seed,
        "keep": s.kid.max_samples,
        "generator_sha256": fileio.sha256_file(generator),
        "truncation": None,
        "noise": "random",
        "inception": as_dict(s.inception),
    }


def shard(s: MetricsSettings, generator: Path, stream: str, index: int, out: Path, device: torch.device) -> None:
    """Partial statistics of shard `index` of `metrics.shards` of a stream."""
    start = time.time()
    latents, num = stream_plan(s, stream)
    G, meta = load_generator(generator, device)
    detector = Inception(s.inception, device)
    blocks = shard_blocks(num, s.batch, index, s.shards, s.seed, stream)
    stats = fake_stats(G, meta, detector, blocks, latents, s.kid.max_samples)
    info = partial_meta(num, s.batch, index, s.shards, stream_settings(s, stream, generator))
    stats.save(
        out, {**info, "seconds": time.time() - start, "device": mr.device_name(device), "detector": detector.record}
    )
    log.info("%s shard %d/%d: samples %d .. %d in %.0f s", stream, index, s.shards, *info["range"], time.time() - start)


# --- results -------------------------------------------------------------------


def load_reals(reals_json: Path) -> tuple[FeatureStats, dict[str, Any]]:
    """The real statistics that `metrics reals` computed, after checking they are the ones it named."""
    try:
        pointer = json.loads(Path(reals_json).read_text())
    except (OSError, ValueError) as err:
        raise StageError(
            f"{reals_json}: cannot read the real statistics' record ({err}); rerun metrics_reals"
        ) from None
    stats, meta = FeatureStats.load(Path(pointer["path"]))
    if meta.get("key") != pointer["key"]:
        raise StageError(f"{pointer['path']}: not the statistics {reals_json} names; rerun metrics_reals")
    return stats, meta


def check_resolution(G: Generator, generator: Path, reals: dict[str, Any]) -> None:
    """Fakes and reals must be compared at the same resolution (the model's final one)."""
    if G.settings.resolution != reals["settings"]["resolution"]:
        raise StageError(
            f"{generator}: a {G.settings.resolution}² model, but the real statistics are at "
            f"{reals['settings']['resolution']}² (train.network.resolution); rerun metrics_reals"
        )


def record(
    metric: str,
    value: float,
    generator: Path,
    meta: dict[str, Any],
    reals: FeatureStats,
    reals_meta: dict[str, Any],
    fakes: FeatureStats,
    info: dict[str, Any],
    seconds: float,
    device: str,
    extra: dict[str, Any] | None = None,
) -> mr.MetricResult:
    """One MetricResult with everything the value depends on."""
    settings = {
        **info["settings"],
        **(extra or {}),
        "reals": reals_meta["settings"],
        "reals_available": reals_meta["available"],
        "generated_resolution": meta["resolution"],
        "alpha": meta["alpha"],
        "shards": info.get("shards", 1),
    }
    return mr.MetricResult(
        metric=metric,
        status=mr.COMPUTED,
        value=value,
        snapshot=str(generator),
        kimg=meta["nimg"] / 1000,
        num_reals=reals.count,
        num_fakes=fakes.count,
        detector=reals_meta["detector"],
        settings=settings,
        seconds=seconds,
        device=device,
    )


def result(
    s: MetricsSettings,
    generator: Path,
    reals_json: Path,
    partials: list[Path],
    fid_out: Path,
    kid: tuple[Path, Path] | None = None,
) -> float:
    """Merge a stream's shards into its FID result, and with `kid` (KID's reals record, its output) KID of
    the same generated features against KID's own reals. Returns the FID."""
    start = time.time()
    reals, reals_meta = load_reals(reals_json)
    fakes, info = merge_partials(partials)
    G, meta = load_generator(generator)
    check_resolution(G, generator, reals_meta)
    if info["settings"]["generator_sha256"] != fileio.sha256_file(generator):
        raise StageError(f"{partials[0]}: computed from another {generator}; rerun the metric's shards")
    if info["detector"]["sha256"] != reals_meta["detector"]["sha256"]:
        raise StageError(f"{partials[0]} and {reals_json} used different Inception files; rerun both")
    device, seconds = info["device"], info["seconds"]
    try:
        fid = fid_of(fakes, reals)
    except FidError as err:
        raise StageError(f"{generator}: FID not computed: {err}") from None
    name = "fid" if info["settings"]["latents"] == 1 else f"fid_{mixing_stream(info['settings']['latents'])}"
    mr.write(
        fid_out,
        record(name, fid, generator, meta, reals, reals_meta, fakes, info, seconds + time.time() - start, device),
    )
    log.info("%s %s: %.4f (%d fakes, %d reals)", generator, name, fid, fakes.count, reals.count)
    if kid is not None:
        kid_reals, kid_meta = load_reals(kid[0])
        value = kernel_inception_distance(kid_reals.kept, fakes.kept, s.kid.subsets, s.kid.subset_size, s.seed)
        mr.write(
            kid[1],
            record(
                "kid",
                value,
                generator,
                meta,
                kid_reals,
                kid_meta,
                fakes,
                info,
                seconds + time.time() - start,
                device,
                {"kid": as_dict(s.kid), "kid_samples": [len(kid_reals.kept), len(fakes.kept)]},
            ),
        )
        log.info("%s kid: %.6f", generator, value)
    return fid


# --- Fig. 7: FID over training -----------------------------------------------------------


def chosen_snapshots(run_dir: Path, every: int) -> list[Path]:
    """Every n-th generator snapshot of the run, and always the last."""
    found = files.all_snapshots(run_dir)
    if not found:
        raise StageError(
            f"{run_dir}: no generator snapshots (training writes them every "
            "train.schedule.network_snapshot_ticks); retrain to draw the curve"
        )
    chosen = found[::every]
    return chosen if chosen[-1] == found[-1] else chosen + [found[-1]]


def curve(
    s: MetricsSettings,
    reals_json: Path,
    run_dir: Path,
    folder: Path,
    out: Path,
    plot: Path,
    lowest_out: Path,
    device: torch.device,
    backbone: Path,
) -> dict[str, Any]:
    """FID of each kept snapshot (one result file each, reused when its settings match), and PPL in W
    beside it when the VGG16 file `backbone` is there; the curve data with the lowest FID (the paper
    reports the lowest over training, Table 1's caption), and a plot. A snapshot whose FID cannot be
    computed is recorded as not computed, with why, and is never the lowest."""
    from stylegan.metrics import ppl

    reals, reals_meta = load_reals(reals_json)
    detector = distance = None
    points = []
    for snapshot in chosen_snapshots(run_dir, s.curve.every):
        path = folder / f"{snapshot.stem}.json"
        wanted = stream_settings(s, "curve", snapshot)
        done = reusable(path, wanted)
        if done is None:
            detector = detector or Inception(s.inception, device)
            done = snapshot_fid(s, snapshot, detector, reals, reals_meta, wanted, device)
            mr.write(path, done)
        point = {"snapshot": str(snapshot), "kimg": done.kimg, "fid": done.value, "result": str(path)}
        if done.reason:
            point["reason"] = done.reason
        if backbone.is_file():
            ppl_path = folder / f"{snapshot.stem}-ppl.json"
            path_length = reusable(ppl_path, ppl.curve_settings(s, snapshot))
            if path_length is None:
                distance = distance or ppl.lpips_vgg.load(backbone, device)
                path_length = ppl.curve_point(s, snapshot, distance, device)
                mr.write(ppl_path, path_length)
            point["ppl"] = path_length.value
        points.append(point)
    computed = [p for p in points if p["fid"] is not None]
    if not computed:
        raise StageError(f"{run_dir}: no snapshot's FID could be computed: {points[-1]['reason']}")
    lowest = min(computed, key=lambda p: p["fid"])
    ppl_note = None if backbone.is_file() else ppl.missing_backbone(backbone)
    data = {
        "points": points,
        "lowest": lowest,
        "num_fakes": s.curve.num_fakes,
        "num_reals": reals.count,
        "ppl": {"variants": list(ppl.CURVE_VARIANTS), "num_samples": s.curve.ppl_samples, "not_computed": ppl_note},
    }
    fileio.write_json(out, data)
    fileio.write_bytes(
        plot,
        provenance.tagged_png(
            curve_png(points, lowest, s.curve.num_fakes, reals.count, ppl_note), [Path(p["snapshot"]) for p in points]
        ),
    )
    best = mr.read(Path(lowest["result"]))
    mr.write(
        lowest_out, dataclasses.replace(best, metric="fid_lowest", settings={**best.settings, "snapshots": len(points)})
    )
    log.info("FID curve: %d snapshots, lowest %.4f at %.1f kimg", len(points), lowest["fid"], lowest["kimg"])
    return data


def reusable(path: Path, wanted: dict[str, Any]) -> mr.MetricResult | None:
    """The result at `path` when it was computed with the `wanted` settings, else None."""
    done = mr.read(path) if path.is_file() else None
    return done if done is not None and {k: done.settings.get(k) for k in wanted} == wanted else None


def snapshot_fid(
    s: MetricsSettings,
    snapshot: Path,
    detector: Inception,
    reals: FeatureStats,
    reals_meta: dict[str, Any],
    wanted: dict[str, Any],
    device: torch.device,
) -> mr.MetricResult:
    """FID of one snapshot, all of its samples in this job; "not computed" and why when the distance fails."""
    start = time.time()
    G, meta = load_generator(snapshot, device)
    check_resolution(G, snapshot, reals_meta)
    blocks = shard_blocks(s.curve.num_fakes, s.batch, 0, 1, s.seed, "curve")
    fakes = fake_stats(G, meta, detector, blocks, 1, s.kid.max_samples)
    try:
        fid = fid_of(fakes, reals)
    except FidError as err:
        log.warning("%s (%.1f kimg): FID not computed: %s", snapshot.name, meta["nimg"] / 1000, err)
        return mr.not_computed(
            "fid",
            snapshot,
            meta["nimg"] / 1000,
            f"{snapshot}: {err}",
            settings=wanted,
            num_reals=reals.count,
            num_fakes=fakes.count,
            seconds=time.time() - start,
            device=mr.device_name(device),
        )
    log.info("%s (%.1f kimg): FID %.4f", snapshot.name, meta["nimg"] / 1000, fid)
    return record(
        "fid",
        fid,
        snapshot,
        meta,
        reals,
        reals_meta,
        fakes,
        {"settings": wanted},
        time.time() - start,
        mr.device_name(device),
    )


def curve_png(
    points: list[dict[str, Any]], lowest: dict[str, Any], fakes: int, reals: int, ppl_note: str | None
) -> bytes:
    """The paper's Fig. 7 panels: FID (the lowest starred, snapshots without one crossed at the axis) and
    PPL in W against training progress, or why PPL was not computed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stylegan.metrics.ppl import CURVE_VARIANTS

    fig, (ax, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    ok = [p for p in points if p["fid"] is not None]
    ax.plot([p["kimg"] for p in ok], [p["fid"] for p in ok], marker="o")
    ax.plot(
        [lowest["kimg"]],
        [lowest["fid"]],
        marker="*",
        markersize=14,
        linestyle="none",
        label=f"lowest {lowest['fid']:.2f} at {lowest['kimg']:.0f} kimg",
    )
    failed = [p["kimg"] for p in points if p["fid"] is None]
    if failed:
        ax.plot(failed, [0] * len(failed), marker="x", color="red", linestyle="none", label="FID not computed")
    ax.set_ylabel(f"FID ({fakes} generated vs {reals} real)")
    ax.set_title("FID over training")
    for variant in CURVE_VARIANTS if ppl_note is None else ():
        right.plot([p["kimg"] for p in points], [p["ppl"][variant] for p in points], marker="o", label=variant)
    if ppl_note is None:
        right.set_ylabel("perceptual path length (LPIPS / ε²)")
        right.legend()
    else:
        right.text(
            0.5,
            0.5,
            "PPL not computed:\n" + textwrap.fill(ppl_note, 60),
            ha="center",
            va="center",
            fontsize=7,
            transform=right.transAxes,
        )
    right.set_title("perceptual path length in W over training")
    for a in (ax, right):
        a.set_xlabel("training progress (kimg: thousands of real images shown)")
        a.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# --- the real statistics job -------------------------------------------------------


def reals(
    s: MetricsSettings,
    manifest: Path,
    resolution: int,
    cache: Path,
    out: Path,
    kid_out: Path,
    train_xflip: bool,
    device: torch.device,
) -> dict[str, dict[str, Any]]:
    """Compute (or find in `cache`) both real statistics and write the records metric jobs read.

    FID's: `metrics.reals.num` images drawn at random, mirrored as the training run was
    (SG1's fid50k), only the covariance's few kept features. KID's: every image up to
    `metrics.kid.max_reals`, never mirrored, all features kept (stylegan2-ada-pytorch
    `kid50k_full`, `metrics/metric_main.py`).
    """
    from stylegan.metrics.reals import real_stats

    detector = Inception(s.inception, device)
    plans = {
        out: (s.reals.num, s.reals.mirrored(train_xflip), FEATURES),
        kid_out: (s.kid.max_reals, False, s.kid.max_reals),
    }
    written = {}
    for path, (num, xflip, keep) in plans.items():
        start = time.time()
        stats, meta = real_stats(manifest, resolution, detector, num, xflip, keep, s.batch, s.seed, cache, s.workers)
        written[str(path)] = {
            "key": meta["key"],
            "path": meta["path"],
            "num_reals": stats.count,
            "available": meta["available"],
            "settings": meta["settings"],
            "detector": meta["detector"],
            "seconds": time.time() - start,
            "device": mr.device_name(device),
        }
        fileio.write_json(path, written[str(path)])
    return written
