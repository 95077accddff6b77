"""Typed settings: wrong types fail with the dotted key, in nested sections too; JSON's string keys still load."""

from __future__ import annotations

import json

import pytest
import yaml

from stylegan import settings
from stylegan.data.align import AlignSettings
from stylegan.settings import SettingsError
from stylegan.train.config import TrainSettings


@pytest.mark.parametrize("section, value, key", [
    ({"network": {"resolution": "16"}}, "'16'", "train.network.resolution"),
    ({"network": {"use_noise": 1}}, "1", "train.network.use_noise"),
    ({"network": {"fmap_base": 16.0}}, "16.0", "train.network.fmap_base"),
    ({"schedule": {"minibatch_dict": {"8": "16"}}}, "'16'", "train.schedule.minibatch_dict.8"),
    ({"schedule": {"minibatch_dict": {"eight": 16}}}, "'eight'", "train.schedule.minibatch_dict.eight"),
    ({"schedule": {"minibatch_repeats": True}}, "True", "train.schedule.minibatch_repeats"),
    ({"loss": {"r1_gamma": "10"}}, "'10'", "train.loss.r1_gamma"),
    ({"loss": {"r1_match_reference": "yes"}}, "'yes'", "train.loss.r1_match_reference"),
    ({"checkpoint": {"grid": [7, "4"]}}, "'4'", "train.checkpoint.grid[1]"),
    ({"seed": "1000"}, "'1000'", "train.seed"),
])  # fmt: skip
def test_wrong_types_in_nested_sections_name_the_dotted_key(section: dict, value: str, key: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings.load(TrainSettings, section, "train")
    assert str(err.value).startswith(f"{key}: got {value}, expected ")


def test_a_numeric_string_is_not_an_integer() -> None:
    with pytest.raises(SettingsError, match=r"align.output_size: got '64', expected an integer"):
        settings.load(AlignSettings, '{"output_size": "64"}', "align")


def test_integers_are_accepted_for_float_fields() -> None:
    s = settings.load(TrainSettings, {"loss": {"r1_gamma": 10}, "schedule": {"total_kimg": 25}}, "train")
    assert s.loss.r1_gamma == 10.0 and isinstance(s.loss.r1_gamma, float) and s.schedule.total_kimg == 25.0


def test_int_keyed_dicts_load_through_the_workflows_json() -> None:
    """The rules pass `json.dumps(config[section])`: YAML's int keys arrive as strings and must still load."""
    section = yaml.safe_load(
        "schedule: {minibatch_dict: {4: 64, 128: 8}, lrate_dict: {256: 0.002}, tick_kimg_dict: {4: 160}}\n"
    )
    text = json.dumps(section, sort_keys=True)  # workflow/rules/common.smk settings()
    assert '"4": 64' in text
    s = settings.load(TrainSettings, text, "train").schedule
    assert s.minibatch_dict == {4: 64, 128: 8} and s.lrate_dict == {256: 0.002} and s.tick_kimg_dict == {4: 160.0}
    assert settings.load(TrainSettings, section, "train").schedule.minibatch_dict == {4: 64, 128: 8}  # YAML ints
