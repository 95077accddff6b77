"""Linear separability (the paper's Section 4.2, Tables 3-4), as SG1 measures it.

NVlabs/stylegan `metrics/linear_separability.py`:

- z ~ N(0, I), w = mapping(z) (no truncation, so every layer's w is the last
  layer's), images with fresh noise, box-downsampled to the classifiers'
  resolution and given to them in [-1, 1]; each classifier gives one logit and
  SG1's probabilities are the float32 softmax([logit, -logit]), the class its argmax
  (0: the attribute is present);
- per attribute, the most confident half of the samples is kept as SG1's code
  keeps it: a stable sort on the float32 probability of the predicted class, so
  samples whose probability saturates at 1.0 tie and the lowest indices win (the
  paper's "half with the highest confidence" would rank them by |logit|);
- `LinearSVC(dual=True)` with the 2019 defaults and a fixed `random_state` (SG1
  leaves it unseeded) is fitted on z and, separately, on w, then predicts the same
  samples; an attribute left with one class counts as a perfect prediction, as
  SG1's `except: predictions = targets`; non-finite z, w, logits or images are an
  error, never a fit that "fails" into a perfect score;
- the 2x2 joint p[svm][classifier], H(Y|X) = max(0, H(Y) - I(X;Y)) in bits, and the
  score 2 ** sum over attributes (the paper's exp of the sum in nats).

Shards generate and classify a sample range and keep one (z, w, logits) row per
sample; the merge fits the SVMs, attributes in parallel over the job's CPUs.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics import classifier as clf
from stylegan.metrics import result as mr
from stylegan.metrics.arrays import load_arrays, save_arrays
from stylegan.metrics.config import MetricsSettings
from stylegan.metrics.shards import Block, check_tiling, partial_meta, shard_blocks
from stylegan.model.files import load_generator
from stylegan.model.networks import Generator
from stylegan.model.sampling import at_final_resolution, full_float32
from stylegan.settings import as_dict

log = logging.getLogger(__name__)

SPACES = ("z", "w")
PARTIAL_FORMAT = "stylegan-ls-partial/1"
SVM_SEED = 0  # LinearSVC's random_state, so a rerun gives the same LS


# --- the maths -----------------------------------------------------------------


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def conditional_entropy(joint: np.ndarray) -> float:
    """H(Y|X) in bits of a joint p[x][y]: H(Y) - I(X;Y), floored at 0 against rounding."""
    px, py = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log2(joint[nz] / np.outer(px, py)[nz])).sum())
    return max(0.0, _entropy(py) - mutual)


def joint_table(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """p[row][col] = share of samples with SVM class `row` and classifier class `col`."""
    return np.array([[np.mean((predicted == r) & (target == c)) for c in (0, 1)] for r in (0, 1)])


def class_probabilities(logits: np.ndarray) -> np.ndarray:
    """SG1's float32 softmax([logit, -logit]) [N, 2] (NVlabs/stylegan `metrics/linear_separability.py`)."""
    pair = np.stack([logits, -logits], axis=1).astype(np.float32)
    e = np.exp(pair - pair.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def keep_confident(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SG1's most confident half: indices by the predicted class's float32 probability, a stable sort (ties,
    e.g. probabilities saturated at 1.0, keep the lowest indices), and the classes (argmax; 0: present)."""
    p = class_probabilities(logits)
    order = np.argsort(-p.max(axis=1), kind="stable")[: len(logits) // 2]
    return order, p[order].argmax(axis=1)


def check_finite(generator: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse samples with a non-finite value: a diverged generator must not score as perfectly separable."""
    bad = np.zeros(len(next(iter(arrays.values()))), dtype=bool)
    for a in arrays.values():
        bad |= ~np.isfinite(a).all(axis=tuple(range(1, a.ndim)))
    if bad.any():
        raise StageError(
            f"{generator}: {int(bad.sum())} of {len(bad)} samples have non-finite "
            f"{', '.join(arrays)} (a diverged generator?); linear separability is undefined for them"
        )


def svm_entropy(x: np.ndarray, target: np.ndarray) -> tuple[float, bool]:
    """H(Y|X) of a linear SVM fitted to (x, target) and predicting x; (entropy, whether the fit ran)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    if len(np.unique(target)) < 2:  # SG1's fit fails on one class and it sets the predictions to the targets
        return conditional_entropy(joint_table(target, target)), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # expected at 100k x 512 with max_iter 1000
        predicted = LinearSVC(dual=True, random_state=SVM_SEED).fit(x, target).predict(x)
    return conditional_entropy(joint_table(predicted, target)), True


def separability(
    z: np.ndarray, w: np.ndarray, logits: np.ndarray, attributes: list[str], workers: int
) -> dict[str, Any]:
    """Per attribute and space H(Y|X), the two scores, and which fits failed; fits run in `workers` processes."""
    from sklearn.utils.parallel import Parallel, delayed

    tasks, kept = [], {}
    for a, name in enumerate(attributes):
        order, target = keep_confident(logits[:, a])
        kept[name] = {"samples": int(len(order)), "positive": int((target == 0).sum())}
        tasks += [(name, space, order, target) for space in SPACES]
    features = {"z": z, "w": w}
    out = Parallel(n_jobs=max(1, workers))(
        delayed(svm_entropy)(features[space][order], target) for _, space, order, target in tasks
    )
    entropy = {space: {} for space in SPACES}
    failed = []
    for (name, space, _, _), (h, fitted) in zip(tasks, out):
        entropy[space][name] = h
        if not fitted:
            failed.append(f"{name}/{space}")
    return {
        "value": {space: float(2 ** sum(entropy[space].values())) for space in SPACES},
        "entropy_bits": entropy,
        "kept": kept,
        "failed_fits": failed,
    }


# --- generation ------------------------------------------------------------------


@torch.no_grad()
@full_float32()
def block_rows(
    G: Generator, meta: dict[str, Any], classifiers: list[clf.Classifier], block: Block
) -> tuple[np.ndarray, ...]:
    """z, w, the classifiers' logits [count, attributes] of the block's generated images, and each image's
    mean pixel (non-finite exactly when one of its pixels is, checked by the shard, never saved)."""
    device = next(G.parameters()).device
    z = torch.randn(block.count, G.settings.latent_size, generator=torch.Generator().manual_seed(block.seed))
    w = G.map(z.to(device))
    torch.manual_seed(block.seed)  # the noise maps
    images = G.synthesize(
        w.unsqueeze(1).repeat(1, G.num_layers, 1), res=meta["resolution"], alpha=meta["alpha"], noise="random"
    ).float()
    images = at_final_resolution(images, G)
    x = clf.to_classifier(images, classifiers[0].resolution, "the generated images")
    logits = torch.stack([c(x) for c in classifiers], dim=1)
    return (z.numpy(), w.float().cpu().numpy(), logits.float().cpu().numpy(), images.mean(dim=(1, 2, 3)).cpu().numpy())


def load_classifiers(paths: list[Path], device: torch.device | str) -> list[clf.Classifier]:
    """The classifiers, all at one resolution."""
    loaded = [clf.load(p, device) for p in paths]
    if len({c.resolution for c in loaded}) > 1:
        raise StageError(
            f"classifiers at several resolutions ({', '.join(f'{c.path}: {c.resolution}' for c in loaded)}); "
            "retrain them with one metrics.ls.resolution"
        )
    return loaded


def ls_settings(s: MetricsSettings, generator: Path, classifiers: list[clf.Classifier]) -> dict[str, Any]:
    """What the rows depend on; partials and the result record it."""
    return {
        "num_samples": s.ls.num_samples,
        "batch": s.batch,
        "seed": s.seed,
        "truncation": None,
        "noise": "random",
        "generator_sha256": fileio.sha256_file(generator),
        "classifiers": {c.attribute: fileio.sha256_file(c.path) for c in classifiers},
        "resolution": classifiers[0].resolution,
    }


def shard(
    s: MetricsSettings, generator: Path, classifier_files: list[Path], index: int, out: Path, device: torch.device
) -> None:
    """The (z, w, logits) rows of shard `index` of `metrics.shards`, as .npz."""
    start = time.time()
    G, meta = load_generator(generator, device)
    classifiers = load_classifiers(classifier_files, device)
    blocks = shard_blocks(s.ls.num_samples, s.batch, index, s.shards, s.seed, "ls")
    rows = [block_rows(G, meta, classifiers, b) for b in blocks]
    z, w, logits, images = (
        np.concatenate([r[k] for r in rows]) if rows else np.zeros((0, 0), np.float32) for k in range(4)
    )
    check_finite(generator, {"z": z, "w": w, "logits": logits, "images": images})
    info = {
        **partial_meta(s.ls.num_samples, s.batch, index, s.shards, ls_settings(s, generator, classifiers)),
        "attributes": [c.attribute for c in classifiers],
        "seconds": time.time() - start,
        "device": mr.device_name(device),
        "generated_resolution": meta["resolution"],
    }
    save_arrays(out, {"z": z, "w": w, "logits": logits}, info, PARTIAL_FORMAT)
    log.info("ls shard %d/%d: %d samples in %.0f s", index, s.shards, len(z), time.time() - start)


def load_partial(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A shard's (z, w, logits) rows and record."""
    return load_arrays(path, PARTIAL_FORMAT, ("z", "w", "logits"), "separability")


def not_computed(generator: Path, reason: str, out: Path, s: MetricsSettings) -> None:
    """The LS record when there is nothing to classify with: why, and what to supply."""
    _, meta = load_generator(generator)
    mr.write(
        out, mr.not_computed("ls", generator, meta["nimg"] / 1000, reason, settings={"num_samples": s.ls.num_samples})
    )


def result(s: MetricsSettings, generator: Path, partials: list[Path], out: Path, workers: int) -> None:
    """Merge the shards, fit the SVMs and write the LS record; with no shards, "not computed" and why."""
    if not partials:
        not_computed(generator, s.ls.missing_labels() or "no separability shards were given", out, s)
        return
    start = time.time()
    loaded = sorted((load_partial(p) + (p,) for p in partials), key=lambda t: t[1]["range"][0])
    info = check_tiling([(meta, path) for _, meta, path in loaded])
    if info["settings"]["generator_sha256"] != fileio.sha256_file(generator):
        raise StageError(f"{partials[0]}: computed from another {generator}; rerun the ls shards")
    z, w, logits = (np.concatenate([rows[k] for rows, _, _ in loaded if len(rows[k])]) for k in ("z", "w", "logits"))
    check_finite(generator, {"z": z, "w": w, "logits": logits})
    fit_start = time.time()
    sep = separability(z, w, logits, info["attributes"], workers)
    _, meta = load_generator(generator)
    seconds = info["seconds"] + time.time() - start
    mr.write(
        out,
        mr.MetricResult(
            metric="ls",
            status=mr.COMPUTED,
            value=sep["value"],
            snapshot=str(generator),
            kimg=meta["nimg"] / 1000,
            num_fakes=int(len(z)),
            settings={
                **info["settings"],
                "attributes": info["attributes"],
                "entropy_bits": sep["entropy_bits"],
                "kept": sep["kept"],
                "failed_fits": sep["failed_fits"],
                "svm": f"LinearSVC(dual=True, random_state={SVM_SEED})",
                "svm_seconds": time.time() - fit_start,
                "svm_workers": workers,
                "shards": info["shards"],
                "ls": as_dict(s.ls),
            },
            seconds=seconds,
            device=info["device"],
        ),
    )
    log.info("ls: z %.3f, w %.3f over %d attributes", sep["value"]["z"], sep["value"]["w"], len(info["attributes"]))
