"""Linear separability and its attribute classifiers: entropy tables by hand, the CelebA format, real demo faces.

The classifier test trains on the demo's own photos, aligned by dlib as the
workflow aligns them, and scores faces it never saw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan import fileio, settings
from stylegan.data import attributes, demo
from stylegan.data.align import align
from stylegan.data.landmarks import FaceFinder
from stylegan.errors import StageError
from stylegan.metrics import classifier as clf
from stylegan.metrics import ls
from stylegan.metrics import result as mr
from stylegan.metrics.arrays import save_arrays
from stylegan.metrics.config import LsSettings, MetricsSettings
from stylegan.metrics.shards import partial_meta
from tests.training import make_generator

CLASSIFIER = {
    "resolution": 32,
    "labels": "demo",
    "classifier": {"images": 1600, "minibatch": 8, "fmap_base": 128, "fmap_max": 32, "val_fraction": 0.3},
}


def h2(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --- the maths ----------------------------------------------------------------------------


def test_conditional_entropy_of_hand_computed_tables() -> None:
    independent = np.outer([0.3, 0.7], [0.6, 0.4])
    assert ls.conditional_entropy(independent) == pytest.approx(h2(0.6))  # knowing X tells nothing: H(Y)
    assert ls.conditional_entropy(np.array([[0.6, 0.0], [0.0, 0.4]])) == pytest.approx(0.0, abs=1e-12)  # X determines Y
    assert ls.conditional_entropy(np.array([[0.0, 0.3], [0.7, 0.0]])) == pytest.approx(0.0, abs=1e-12)  # flipped too
    # rows equally likely, each 80/20: H(Y|X) = H(0.8) = 0.7219 bits
    assert ls.conditional_entropy(np.array([[0.4, 0.1], [0.1, 0.4]])) == pytest.approx(0.7219280948873623)


def test_joint_table_and_the_confident_half() -> None:
    joint = ls.joint_table(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert joint.tolist() == [[0.25, 0.25], [0.0, 0.5]]
    # unsaturated: p = 1 / (1 + e^(-2|l|)) grows with |l|; class 0 (SG1's argmax) where l > 0
    order, target = ls.keep_confident(np.array([0.1, -3.0, 2.0, -0.2, 0.5, 1.0]))
    assert order.tolist() == [1, 2, 5] and target.tolist() == [1, 0, 0]


def test_the_confident_half_is_sg1s_when_probabilities_saturate() -> None:
    """SG1 sorts on the float32 softmax probability: 1 / (1 + e^-24) and above round to 1.0 in float32,
    so |logit| 12, 15, 20, 13 and 30 tie and the lowest indices are kept, not the largest |logit|."""
    logits = np.array([0.5, 12.0, -3.0, 15.0, 20.0, -13.0, 1.0, 30.0, 2.0, -0.1])
    order, target = ls.keep_confident(logits)
    assert order.tolist() == [1, 3, 4, 5, 7]  # by |logit| it would be [7, 4, 3, 5, 1]
    assert target.tolist() == [0, 0, 0, 1, 0]
    # below saturation the ranking is by confidence, ties (equal |logit|) in sample order
    order, _ = ls.keep_confident(np.array([1.0, -2.0, 2.0, 0.5]))
    assert order.tolist() == [1, 2]


def test_ls_of_a_tiny_labelled_set_worked_by_hand() -> None:
    """8 confident samples in 4 pairs of equal z. 'a' is the sign of z[0]: a hyperplane separates it,
    H = 0. 'b' differs within every pair, so whatever an SVM predicts for a pair, one of the two is
    right: p[r][c] = (pairs predicted r) / 8 for both c, X and Y independent, H(Y|X) = H(Y) = 1 bit.
    LS = 2 ** (0 + 1) = 2, in z and w alike."""
    z = np.array([[-2.0, 0], [-2, 0], [-1, 0], [-1, 0], [1, 0], [1, 0], [2, 0], [2, 0]])
    a = np.where(z[:, 0] > 0, 40.0, -40.0)
    b = np.array([40.0, -40, -40, 40, 40, -40, -40, 40])
    logits = np.concatenate([np.stack([a, b], 1), np.full((8, 2), 1e-3)])  # 8 unsure rows: dropped
    zs = np.concatenate([z, np.random.default_rng(0).normal(size=(8, 2))])
    out = ls.separability(zs, zs, logits, ["a", "b"], workers=1)
    assert out["kept"] == {"a": {"samples": 8, "positive": 4}, "b": {"samples": 8, "positive": 4}}
    for space in ("z", "w"):
        assert out["entropy_bits"][space]["a"] == pytest.approx(0.0, abs=1e-12)
        assert out["entropy_bits"][space]["b"] == pytest.approx(1.0, rel=1e-12)
        assert out["value"][space] == pytest.approx(2.0, rel=1e-12)
    assert out["failed_fits"] == []


def test_svm_is_seeded_and_non_finite_samples_are_an_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(300, 6)) * 100).astype(np.float32)
    y = (x[:, 0] + 80 * rng.normal(size=300) > 0).astype(np.int64)
    # far from converged in 1000 iterations: unseeded, the coordinate order changes the predictions every run
    assert len({ls.svm_entropy(x, y)[0] for _ in range(3)}) == 1
    generator = make_generator(tmp_path / "g.pt")
    rows = {"z": x[:4], "w": x[:4].copy(), "logits": np.ones((4, 2), np.float32)}
    rows["w"][1, 2], rows["logits"][3, 0] = np.nan, np.inf
    with pytest.raises(StageError, match=r"g\.pt: 2 of 4 samples have non-finite z, w, logits"):
        ls.check_finite(generator, rows)
    s = settings.load(MetricsSettings, {"ls": {"num_samples": 4}, "batch": 4}, "metrics")
    path = tmp_path / "ls-000.npz"
    save_arrays(
        path,
        rows,
        {
            **partial_meta(4, 4, 0, 1, {"generator_sha256": fileio.sha256_file(generator)}),
            "attributes": ["a", "b"],
            "seconds": 0.0,
            "device": "cpu",
        },
        ls.PARTIAL_FORMAT,
    )
    with pytest.raises(StageError, match="2 of 4 samples have non-finite"):
        ls.result(s, generator, [path], tmp_path / "ls.json", workers=1)
    assert not (tmp_path / "ls.json").exists()  # never a perfect score for a diverged generator


def test_svm_separability_scores() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 8)).astype(np.float32)
    w = rng.normal(size=(400, 8)).astype(np.float32)
    logits = np.stack([z[:, 0] * 3, np.abs(z[:, 1]) + 1], axis=1)  # a: linear in z; b: always positive
    out = ls.separability(z, w, logits, ["a", "b"], workers=1)
    assert out["entropy_bits"]["z"]["a"] < 0.05  # a hyperplane in z separates a
    assert out["entropy_bits"]["w"]["a"] > 0.9  # w is independent of a: about H(Y) = 1 bit
    assert out["entropy_bits"]["z"]["b"] == 0.0 and out["failed_fits"] == ["b/z", "b/w"]  # one class: perfect
    assert out["value"]["z"] == pytest.approx(2 ** sum(out["entropy_bits"]["z"].values()))
    assert out["kept"]["a"]["samples"] == 200


# --- the CelebA format --------------------------------------------------------------------


def write_faces(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.fromarray(np.full((64, 64, 3), 40 * k, np.uint8)).save(folder / name)


def test_attribute_file_round_trip_and_mapping(tmp_path: Path) -> None:
    labels = np.array([[1, -1], [-1, -1], [1, 1]], np.int8)
    attributes.write(tmp_path / "attr.txt", ["000001.jpg", "000002.jpg", "000003.jpg"], ["Male", "Smiling"], labels)
    assert (tmp_path / "attr.txt").read_text().splitlines()[:3] == ["3", "Male Smiling", "000001.jpg  1 -1"]
    table = attributes.read(tmp_path / "attr.txt")
    assert table.attributes == ("Male", "Smiling") and np.array_equal(table.labels, labels)
    assert attributes.attribute_names(tmp_path / "attr.txt") == table.attributes  # the workflow's classifier jobs
    # CelebA-HQ: images named by index, the mapping says which CelebA image each is
    write_faces(tmp_path / "hq", ["0.jpg", "1.jpg"])
    (tmp_path / "map.txt").write_text("idx orig_idx orig_file\n0 2 000003.jpg\n1 0 000001.jpg\n")
    paths, rows = attributes.labelled_images(
        tmp_path / "hq", table, tmp_path / "attr.txt", attributes.read_mapping(tmp_path / "map.txt")
    )
    assert [p.name for p in paths] == ["0.jpg", "1.jpg"] and rows.tolist() == [[1, 1], [1, -1]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3\nMale Smiling\na.jpg 1 -1\nb.jpg 1 1\n", "line 1 says 3 images but 2 lines follow"),
        ("2\nMale Smiling\na.jpg 1 -1\nb.jpg 1 0\n", r"line 4 \(b.jpg\) has label '0'; labels are 1 or -1"),
        ("2\nMale Smiling\na.jpg 1 -1\nb.jpg 1\n", "line 4 has 1 labels for 2 attributes"),
        ("Male Smiling\na.jpg 1 -1\n", "not CelebA's attribute format"),
    ],
)
def test_bad_attribute_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "attr.txt").write_text(text)
    with pytest.raises(StageError, match=message):
        attributes.read(tmp_path / "attr.txt")
    if "CelebA" in message:  # a bad header fails the workflow's listing of attributes too
        with pytest.raises(StageError, match=message):
            attributes.attribute_names(tmp_path / "attr.txt")


def test_attribute_file_that_does_not_match_the_images(tmp_path: Path) -> None:
    attributes.write(tmp_path / "attr.txt", ["a.png", "b.png"], ["Male"], np.array([[1], [-1]]))
    write_faces(tmp_path / "faces", ["a.png"])
    with pytest.raises(StageError, match="1 labelled images are not in the folder.*b.png"):
        clf.labelled_faces(tmp_path / "faces", tmp_path / "attr.txt", None, "Male")
    with pytest.raises(StageError, match="no attribute 'Smiling'; it has Male"):
        clf.labelled_faces(tmp_path / "faces", tmp_path / "attr.txt", None, "Smiling")


def test_single_class_attribute_and_unloadable_classifier(tmp_path: Path) -> None:
    attributes.write(tmp_path / "attr.txt", ["a.png", "b.png"], ["Bald"], np.array([[-1], [-1]]))
    write_faces(tmp_path / "faces", ["a.png", "b.png"])
    faces = clf.labelled_faces(tmp_path / "faces", tmp_path / "attr.txt", None, "Bald")
    s = settings.load(LsSettings, {**CLASSIFIER, "classifier": {**CLASSIFIER["classifier"], "val_fraction": 0.0}})
    with pytest.raises(StageError, match="'Bald' has a single class"):
        clf.train(s, faces, "Bald", 0, tmp_path / "Bald.pt")
    assert not (tmp_path / "Bald.pt").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a classifier")
    with pytest.raises(StageError, match="junk.pt: not an attribute classifier.*rerun its ls_classifier job"):
        clf.load(tmp_path / "junk.pt")


def test_classifier_input_must_downsample_evenly() -> None:
    assert clf.to_classifier(torch.zeros(1, 3, 128, 128), 32, "x").shape[-1] == 32
    with pytest.raises(StageError, match="cannot be box-downsampled to 32²"):
        clf.to_classifier(torch.zeros(1, 3, 48, 48), 32, "x")


# --- real demo faces ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_faces(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """48 demo photos, their faces aligned by dlib to 64², and the labels carried to them."""
    tmp = tmp_path_factory.mktemp("demo")
    sidecar = tmp / "photos" / "licenses.json"
    demo.make_photos(demo.DemoSettings(photos=48, min_side=300, max_side=500), 11, sidecar)
    finder = FaceFinder("hog", 1)
    records = []
    for name in sorted(json.loads(sidecar.read_text())):
        pixels = np.asarray(Image.open(sidecar.parent / name).convert("RGB"))
        found = finder.find(pixels)
        if found:
            path = tmp / "faces" / f"{name}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(align(pixels, found[0].landmarks, 64, 256).image).save(path)
            records.append({"status": "ok", "source_id": name, "image": str(path)})
    fileio.write_jsonl(tmp / "faces.jsonl", records)
    out = tmp / "face_attributes.txt"
    count = demo.face_labels(demo.attributes_file(sidecar), [tmp / "faces.jsonl"], tmp, out)
    return {"tmp": tmp, "faces": tmp, "attributes": out, "count": count}  # names: faces/<photo>.png


def test_demo_labels_reach_the_aligned_faces(demo_faces: dict) -> None:
    photos = attributes.read(demo.attributes_file(demo_faces["tmp"] / "photos" / "licenses.json"))
    faces = attributes.read(demo_faces["attributes"])
    assert faces.attributes == demo.ATTRIBUTES and demo_faces["count"] >= 40
    for name, row in zip(faces.names, faces.labels):
        assert np.array_equal(row, photos.labels[photos.names.index(name.removeprefix("faces/").removesuffix(".png"))])


@pytest.mark.parametrize("attribute", demo.ATTRIBUTES)
def test_classifier_learns_a_demo_attribute(demo_faces: dict, tmp_path: Path, attribute: str) -> None:
    s = settings.load(LsSettings, CLASSIFIER, "metrics.ls")
    faces = clf.labelled_faces(demo_faces["faces"], demo_faces["attributes"], None, attribute)
    record = clf.train(s, faces, attribute, 0, tmp_path / f"{attribute}.pt")
    held_out = record["val_faces"]
    labels = faces.labels[[clf.held_out(p.name, 0.3) for p in faces.paths]]
    chance = max(np.mean(labels == 1), np.mean(labels == -1))  # always guessing the larger class
    assert held_out >= 10 and record["val_accuracy"] >= max(0.8, chance + 0.2), (record["val_accuracy"], chance)
    loaded = clf.load(tmp_path / f"{attribute}.pt")
    assert loaded.attribute == attribute and loaded.resolution == 32


def test_ls_split_and_merge_equals_unsplit(tmp_path: Path) -> None:
    generator = make_generator(tmp_path / "g.pt", noise_strength=0.5, resolution=32)
    attributes.write(
        tmp_path / "attr.txt", ["a.png", "b.png", "c.png"], ["X", "Y"], np.array([[1, -1], [-1, 1], [1, 1]])
    )
    write_faces(tmp_path / "faces", ["a.png", "b.png", "c.png"])
    s = settings.load(
        LsSettings,
        {**CLASSIFIER, "classifier": {**CLASSIFIER["classifier"], "images": 16, "val_fraction": 0.0}},
        "metrics.ls",
    )
    classifiers = []
    for name in ("X", "Y"):
        classifiers.append(tmp_path / f"{name}.pt")
        clf.train(
            s, clf.labelled_faces(tmp_path / "faces", tmp_path / "attr.txt", None, name), name, 1, classifiers[-1]
        )
    records = {}
    for shards in (1, 2):
        m = settings.load(
            MetricsSettings, {"ls": {**CLASSIFIER, "num_samples": 40}, "batch": 6, "shards": shards}, "metrics"
        )
        partials = [tmp_path / f"{shards}-{i}.npz" for i in range(shards)]
        for index, path in enumerate(partials):
            ls.shard(m, generator, classifiers, index, path, torch.device("cpu"))
        ls.result(m, generator, partials, tmp_path / f"ls{shards}.json", workers=shards)
        records[shards] = mr.read(tmp_path / f"ls{shards}.json")
    one, two = records[1], records[2]
    assert one.status == mr.COMPUTED and one.num_fakes == 40 and two.settings["shards"] == 2
    assert set(one.value) == {"z", "w"} and one.value == pytest.approx(two.value, rel=1e-12)
    assert one.settings["entropy_bits"] == two.settings["entropy_bits"]
    assert one.settings["kept"]["X"]["samples"] == 20
    with pytest.raises(StageError, match="a shard is missing"):
        ls.result(m, generator, partials[:1], tmp_path / "bad.json", workers=1)
    assert not (tmp_path / "bad.json").exists()


def test_ls_without_labelled_faces_says_not_computed_and_why(tmp_path: Path) -> None:
    generator = make_generator(tmp_path / "g.pt")
    m = settings.load(MetricsSettings, {"ls": {"faces": str(tmp_path / "CelebA-HQ-img")}}, "metrics")
    ls.result(m, generator, [], tmp_path / "ls.json", workers=1)
    record = mr.read(tmp_path / "ls.json")
    assert record.status == mr.NOT_COMPUTED and record.value is None
    assert "metrics.ls.attributes_file not set" in record.reason and "CelebA-HQ-img (metrics.ls.faces)" in record.reason
    assert "list_attr_celeba.txt" in record.reason
