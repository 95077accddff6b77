"""The progressive-growing schedule against NVlabs/stylegan `training/training_loop.py` training_schedule."""

from __future__ import annotations

import pytest

from stylegan.model.schedule import ScheduleSettings, ema_beta, level_at, resolutions

FFHQ_8GPU = ScheduleSettings()  # the defaults are the paper's FFHQ run on 8 GPUs


@pytest.mark.parametrize(
    "kimg, res, alpha, minibatch, lrate",
    [
        (0, 8, 1.0, 256, 0.001),  # 8² stable
        (599.9, 8, 1.0, 256, 0.001),
        (650, 16, 1 - 550 / 600, 128, 0.001),  # fading to 16: the new level's batch and lr already
        (1250, 16, 1.0, 128, 0.001),
        (1900, 32, 1 - 500 / 600, 64, 0.001),
        (5000, 128, 1.0, 32, 0.0015),
        (6300, 256, 1.0, 32, 0.002),
        (8000, 1024, 1 / 3, 32, 0.003),  # 7800-8400: the fade to 1024
        (9000, 1024, 1.0, 32, 0.003),
        (25000, 1024, 1.0, 32, 0.003),
    ],
)
def test_level_matches_the_reference_table(kimg: float, res: int, alpha: float, minibatch: int, lrate: float) -> None:
    level = level_at(FFHQ_8GPU, 1024, kimg)
    assert (level.resolution, level.minibatch, level.lrate) == (res, minibatch, lrate)
    assert level.alpha == pytest.approx(alpha)


def test_lod_and_tick_lengths() -> None:
    assert level_at(FFHQ_8GPU, 1024, 0).lod == 7
    assert level_at(FFHQ_8GPU, 1024, 900).lod == pytest.approx(6.5)
    assert level_at(FFHQ_8GPU, 1024, 8400).lod == 0
    assert [level_at(FFHQ_8GPU, 1024, k).tick_kimg for k in (0, 1250, 9000)] == [140, 120, 20]


def test_adam_reset_points_are_every_600_kimg() -> None:
    """floor or ceil of lod changes at the start of each fade and of each stable phase."""
    bounds = [level_at(FFHQ_8GPU, 1024, k).lod_bounds for k in range(0, 9000, 50)]
    changes = [k * 50 for k in range(1, len(bounds)) if bounds[k] != bounds[k - 1]]
    fades = [1200 * i + 650 for i in range(7)]  # lod leaves an integer: first evaluation after 600 + 1200 i
    stables = [1200 * (i + 1) for i in range(7)]  # lod reaches an integer exactly at 1200 (i + 1)
    assert changes == sorted(fades + stables)


@pytest.mark.parametrize(
    "preset, res, minibatch",
    [
        (1, 8, 128),
        (1, 512, 4),
        (1, 1024, 4),
        (2, 256, 8),
        (2, 512, 8),
        (4, 128, 16),
        (4, 1024, 16),
        (8, 64, 32),
    ],
)
def test_gpu_presets(preset: int, res: int, minibatch: int) -> None:
    s = ScheduleSettings(minibatch_preset=preset)
    assert s.minibatches()[1].get(res, s.minibatches()[0]) == minibatch
    kimg = {8: 0, 64: 3700, 128: 4900, 256: 6100, 512: 7300, 1024: 9000}[res]
    assert level_at(s, 1024, kimg).minibatch == minibatch


def test_custom_dicts_and_short_models() -> None:
    s = ScheduleSettings(
        minibatch_preset=None,
        minibatch_base=6,
        minibatch_dict={8: 20},
        lrate_dict={},
        lod_training_kimg=1,
        lod_transition_kimg=1,
    )
    assert (level_at(s, 32, 0).minibatch, level_at(s, 32, 2.5).minibatch) == (20, 6)
    assert level_at(s, 32, 100).resolution == 32 and level_at(s, 32, 100).lrate == 0.001
    assert level_at(s, 8, 5).resolution == 8 and level_at(s, 8, 5).alpha == 1.0
    assert resolutions(s, 32) == [8, 16, 32]


def test_ema_half_life() -> None:
    assert ema_beta(256, 10) == pytest.approx(0.9824, abs=1e-4)  # derived: 0.5 ** (256 / 10000)
    assert ema_beta(32, 10) == pytest.approx(0.99778, abs=1e-5)
    assert ema_beta(32, 10) ** (10_000 / 32) == pytest.approx(0.5)
