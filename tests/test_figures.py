"""The paper's figures: each PNG has the paper's layout, checked cell by cell against images
rendered here independently (per-layer ws built by hand, noise weights zeroed on a copy).

The generator is a reduced config F at 32² (8 synthesis layers), built and saved as a
generator file the way training writes one; its noise weights and w_avg are set so that
noise and truncation are visible.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.cli import FIGURE_HELP, main
from stylegan.errors import StageError
from stylegan.metrics import figures
from stylegan.metrics.config import FigureSettings
from stylegan.model import files
from stylegan.model.files import generator_file
from stylegan.model.networks import Generator, NetworkSettings
from stylegan.model.sampling import latents, render, to_uint8
from tests.training import NETWORK

torch.set_num_threads(1)

NET = NetworkSettings(**{**NETWORK, "resolution": 32, "truncation_psi": 0.5, "truncation_cutoff": 2})
RES = 32
# cell = RES: one PNG pixel per image pixel. Bands at 32²: coarse 4² (layers 0-1), middle 8²-16² (2-5),
# fine 32² (6-7); coarse noise 4²-8² (layers 0-3).
S = FigureSettings(
    seed=3,
    cell=RES,
    uncurated=(3, 2),
    mixing_columns=3,
    mixing_rows=("coarse", "middle", "fine"),
    coarse_max=4,
    middle_max=16,
    stochastic_latents=2,
    stochastic_shown=2,
    stochastic_draws=20,
    noise_latents=2,
    noise_coarse_max=8,
    truncation_psis=(1.0, 0.0, -1.0),
    truncation_latents=2,
)


def build(noise_weight: float = 0.5) -> Generator:
    torch.manual_seed(0)
    G = Generator(NET).eval().requires_grad_(False)
    with torch.no_grad():
        G.w_avg.normal_()
        for name, p in G.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(noise_weight)
    return G


def without_noise(G: Generator, layers: range | None = None) -> Generator:
    """A copy with the noise weights of `layers` (all when None) set to 0: an independent 'noise off'."""
    G = copy.deepcopy(G)
    names = [n for n, _ in G.named_parameters() if n.endswith("noise.weight")]  # in layer order
    with torch.no_grad():
        for i, name in enumerate(names):
            if layers is None or i in layers:
                G.get_parameter(name).zero_()
    return G


def cells(png: bytes, columns: int, rows: int) -> np.ndarray:
    """The PNG as [rows, columns, cell, cell, 3] uint8 blocks."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert pixels.shape == (rows * RES, columns * RES, 3)
    return pixels.reshape(rows, RES, columns, RES, 3).transpose(0, 2, 1, 3, 4)


def uint8(images: torch.Tensor) -> np.ndarray:
    return to_uint8(images).permute(0, 2, 3, 1).numpy()


def assert_images(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to one grey level (rounding of float results computed in other batch sizes)."""
    assert actual.shape == expected.shape
    assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1


def ws_of(G: Generator, seeds: list[int]) -> torch.Tensor:
    return G.map(latents(seeds, NET.latent_size)).unsqueeze(1).repeat(1, G.num_layers, 1)


def hand_truncate(G: Generator, ws: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """w' = w_avg + psi (w - w_avg) on layers below cutoff (paper Appendix B)."""
    out = ws.clone()
    layers = slice(0, cutoff)
    out[:, layers] = G.w_avg + psi * (ws[:, layers] - G.w_avg)
    return out


def synth(G: Generator, ws: torch.Tensor, noise: str = "const") -> np.ndarray:
    with torch.no_grad():
        return uint8(G.synthesize(ws, res=RES, noise=noise))


def test_bands_map_resolutions_to_layers_as_the_paper() -> None:
    paper = FigureSettings()  # §3.1: coarse 4²-8², middle 16²-32², fine 64²-1024²; Fig. 5 split at 32²
    assert figures.style_bands(paper, 1024) == {"coarse": range(0, 4), "middle": range(4, 8), "fine": range(8, 18)}
    assert figures.style_bands(paper, 32)["fine"] == range(0)
    assert figures.style_bands(S, 32) == {"coarse": range(0, 2), "middle": range(2, 6), "fine": range(6, 8)}
    modes = figures.noise_layer_modes(18, paper, 1024)
    assert [i for i, m in enumerate(modes["coarse"]) if m == "const"] == list(range(8))
    assert [i for i, m in enumerate(modes["fine"]) if m == "const"] == list(range(8, 18))
    assert set(modes["none"]) == {"none"} and set(modes["all"]) == {"const"}


def test_style_mixing_rows_copy_their_band_from_the_column_source() -> None:
    G = build()
    png = figures.style_mixing(G, S, RES, 1.0)
    grid = cells(png, S.mixing_columns + 1, len(S.mixing_rows) + 1)
    b_seeds = [3, 4, 5]
    a_seeds = [6, 7, 8]
    # untruncated although G is configured with psi 0.5: NVlabs/stylegan generate_figures.py maps w and
    # synthesises it directly
    b, a = ws_of(G, b_seeds), ws_of(G, a_seeds)
    assert G.settings.truncation_psi == 0.5
    assert (grid[0, 0] == 0).all()  # the empty corner
    assert_images(np.stack(list(grid[0, 1:])), synth(G, b))  # top row: sources B
    assert_images(np.stack(list(grid[1:, 0])), synth(G, a))  # left column: sources A
    for i, layers in enumerate([range(0, 2), range(2, 6), range(6, 8)]):
        mixed = a[i : i + 1].repeat(3, 1, 1)
        mixed[:, layers] = b[:, layers]
        assert_images(np.stack(list(grid[i + 1, 1:])), synth(G, mixed))
        # the rest of the row keeps the row source's styles: copying B's band changed the image
        assert all(np.abs(grid[i + 1, j + 1].astype(int) - grid[i + 1, 0]).max() > 1 for j in range(3))


def test_style_mixing_refuses_a_band_the_generator_does_not_have() -> None:
    with pytest.raises(StageError, match="no fine layers.*coarse_max 8 and middle_max 32"):
        figures.style_mixing(build(), dataclasses.replace(S, coarse_max=8, middle_max=32), RES, 1.0)


def test_noise_figure_columns_are_all_none_fine_coarse() -> None:
    G = build()
    grid = cells(figures.noise_layers(G, S, RES, 1.0), 4, S.noise_latents)
    ws = ws_of(G, [3, 4])
    all_noise = synth(G, ws)
    no_noise = synth(without_noise(G), ws)
    assert_images(np.stack(list(grid[:, 0])), all_noise)
    assert_images(np.stack(list(grid[:, 1])), no_noise)
    assert_images(np.stack(list(grid[:, 1])), synth(G, ws, noise="none"))  # the deterministic render
    assert_images(np.stack(list(grid[:, 2])), synth(without_noise(G, range(0, 4)), ws))  # fine only
    assert_images(np.stack(list(grid[:, 3])), synth(without_noise(G, range(4, 8)), ws))  # coarse only
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(grid[:, a].astype(int) - grid[:, b]).max() > 1, (a, b)


def test_truncation_sweep_psi1_is_untruncated_and_psi0_is_the_mean_face() -> None:
    G = build()
    grid = cells(figures.truncation(G, S, RES, 1.0), 3, S.truncation_latents)
    ws = ws_of(G, [3, 4])
    assert_images(np.stack(list(grid[:, 0])), synth(G, ws))
    mean_face = synth(G, G.w_avg.expand(1, G.num_layers, -1))[0]
    for row in range(S.truncation_latents):
        assert_images(grid[row, 1], mean_face)
    assert_images(np.stack(list(grid[:, 2])), synth(G, 2 * G.w_avg - ws))  # psi -1: the "anti-face"


def test_uncurated_grid_uses_the_generators_truncation() -> None:
    G = without_noise(build())  # noise off, so the random draws do not enter the comparison
    columns, rows = S.uncurated
    grid = cells(figures.uncurated(G, S, RES, 1.0), columns, rows)
    ws = hand_truncate(G, ws_of(G, list(range(3, 3 + columns * rows))), NET.truncation_psi, NET.truncation_cutoff)
    assert_images(grid.reshape(-1, RES, RES, 3), synth(G, ws, noise="none"))


def test_stochastic_variation_std_map_is_zero_without_noise_and_matches_100_draws() -> None:
    quiet = cells(figures.stochastic(build(noise_weight=0.0), S, RES, 1.0), 3, 2)
    assert (quiet[:, 2] == 0).all()  # no noise anywhere: no deviation anywhere
    assert (quiet[:, 0] == quiet[:, 1]).all()
    G = build()
    grid = cells(figures.stochastic(G, S, RES, 1.0), 3, 2)
    torch.manual_seed(S.seed)  # the figure's draws for its first row, rendered here in one call
    draws = render(G, latents([3], NET.latent_size).expand(S.stochastic_draws, -1), RES, 1.0, noise="random")
    grey = to_uint8(draws).double().mean(dim=1).numpy()
    expected = np.clip(grey.std(axis=0) * 4, 0, 255)  # NVlabs generate_figures.py: std of grey images x4
    assert_images(grid[0, 2], np.repeat(np.round(expected)[..., None], 3, axis=2).astype(np.uint8))
    assert grid[0, 2].max() > 0
    assert_images(np.stack(list(grid[0, :2])), uint8(draws[:2]))
    assert np.abs(grid[0, 0].astype(int) - grid[0, 1]).max() > 1  # two realisations differ


def test_cli_draws_each_figure_from_a_generator_file(tmp_path: Path) -> None:
    G = build()
    path = tmp_path / "generator.pt"
    files.save(path, generator_file(G, NET, 2000, RES, 1.0))
    assert set(FIGURE_HELP) == set(figures.FIGURES) == set(figures.STEMS)  # a sub-command and a file name each
    settings = json_settings(dataclasses.replace(S, cell=16))  # a 32² generator shown at 16 px: area-downscaled
    for name in figures.FIGURES:
        assert (
            main(
                [
                    "figures",
                    name,
                    "--generator",
                    str(path),
                    "--settings",
                    settings,
                    "--out",
                    str(tmp_path / f"{name}.png"),
                ]
            )
            == 0
        )
    assert Image.open(tmp_path / "truncation.png").size == (3 * 16, 2 * 16)
    assert Image.open(tmp_path / "style-mixing.png").size == (4 * 16, 4 * 16)
    bad = json_settings(dataclasses.replace(S, noise_coarse_max=32))
    assert (
        main(["figures", "noise", "--generator", str(path), "--settings", bad, "--out", str(tmp_path / "x.png")]) == 2
    )
    assert not (tmp_path / "x.png").exists()


def json_settings(s: FigureSettings) -> str:
    import json

    return json.dumps(dataclasses.asdict(s))
