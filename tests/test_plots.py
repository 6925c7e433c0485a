"""plots: figure helpers whose numbers are derived (not just drawn)."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from revisit.plots import size_series  # noqa: E402


def test_size_series_plots_gains_over_x1_and_rmse_reductions():
    rows = [f"A_x{f}" for f in (1, 2, 4, 8)]
    ours = pd.DataFrame({"VOC_seg": [10.0, 11.0, 13.0, 12.0], "NYUD_depth_rmse": [1.0, 0.9, 0.95, 1.1]}, index=rows)
    paper = pd.DataFrame({"VOC_seg": [60.0, 62.0, 63.0, 65.0], "NYUD_depth_rmse": [0.6, 0.59, 0.58, 0.57]}, index=rows)
    axes = size_series(ours, paper, ["A"], (1, 2, 4, 8))
    voc_ours, voc_paper = (line.get_ydata() for line in axes[0].get_lines()[:2])
    np.testing.assert_allclose(voc_ours, [0, 1, 3, 2])
    np.testing.assert_allclose(voc_paper, [0, 2, 3, 5])
    depth_ours = axes[1].get_lines()[0].get_ydata()
    np.testing.assert_allclose(depth_ours, [0, 0.1, 0.05, -0.1])  # a lower rmse is a gain


def test_seed_strips_draw_every_seed_and_each_models_mean():
    from revisit.plots import seed_strips

    seeds = pd.DataFrame({"Cars": [60.0, 62.0, 64.0, 50.0, 51.0, np.nan], "Pets": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
                         index=pd.MultiIndex.from_product([["A", "B"], [0, 1, 2]], names=["model", "seed"]))
    bounds = pd.DataFrame({"random init.": [55.0], "ceiling": [70.0]}, index=["Cars"])
    fig = seed_strips(seeds, bounds)
    cars, pets = fig.axes[:2]
    from matplotlib.collections import PathCollection

    dots = np.concatenate([c.get_offsets()[:, 1] for c in cars.collections if isinstance(c, PathCollection)])
    assert sorted(dots) == [50.0, 51.0, 60.0, 62.0, 64.0]  # a missing seed draws nothing
    means = next(c for c in cars.collections if c.get_label() == "mean over seeds")
    assert [seg[0][1] for seg in means.get_segments()] == [62.0, 50.5]
    assert sorted(line.get_ydata()[0] for line in cars.get_lines()) == [55.0, 70.0]
    assert not pets.get_lines()  # no bounds for Pets
