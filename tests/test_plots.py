"""Figure labels: every case of every figure reads differently."""

import xarray as xr

from linflow import plots


def summary(cases, method="flow", experiment="e", **coords):
    ds = xr.Dataset(coords={"case": list(cases), **{k: ("case", list(v)) for k, v in coords.items()}})
    ds.attrs.update(simulation=f'{{"method": "{method}"}}', experiment=experiment)
    return ds


def test_alpha_keeps_its_digits_in_a_label():
    assert plots.case_label({"init": "gaussian", "alpha": 0.375}) == "α = 0.375"
    assert plots.case_label({"init": "gaussian", "alpha": 0.38}) == "α = 0.38"
    assert plots.case_label({"init": "gaussian", "alpha": 0.5}) == "α = 0.50"


def test_cases_differing_only_in_a_simulation_setting_get_distinct_labels():
    s = summary(["s1", "s2", "s3"], init=["gaussian"] * 3, alpha=[0.5] * 3, step=[0.01, 0.1, 0.5])
    (labels,) = plots._series_labels([s])
    assert labels == ["gradient flow, α = 0.50, step = 0.01", "gradient flow, α = 0.50, step = 0.1",
                      "gradient flow, α = 0.50, step = 0.5"]


def test_cases_that_read_alike_are_told_apart_by_their_names_and_experiments():
    same = summary(["x", "y"], init=["gaussian"] * 2, alpha=[0.5] * 2)
    (labels,) = plots._series_labels([same])
    assert len(set(labels)) == 2 and "[x]" in labels[0]
    a, b = summary(["c"], experiment="one", init=["gaussian"], alpha=[0.4]), \
        summary(["c"], experiment="two", init=["gaussian"], alpha=[0.4])
    labels = [label for group in plots._series_labels([a, b]) for label in group]
    assert len(set(labels)) == 2 and "(one)" in labels[0]


def test_widths_read_as_powers_of_ten():
    assert plots.width_text(1000) == "1000" and plots.width_text(3162) == "3162"
    assert plots.width_text(10**6) == "$10^{6}$" and plots.width_text(10**4) == "$10^{4}$"
    assert plots.width_text(31623) == r"$3.16 \times 10^{4}$"


def test_a_case_has_one_style_whatever_else_the_figure_draws():
    import seaborn as sns

    half, three_tenths = plots.style_index(alpha=0.5), plots.style_index(alpha=0.3)
    alone = plots.assign_styles([half], sns)[0]
    crowded = plots.assign_styles([None, None, three_tenths, half, half], sns)
    assert crowded[3] == crowded[4] == alone  # the same case drawn twice (two methods) and elsewhere
    assert crowded[2] == plots.assign_styles([three_tenths], sns)[0] != alone
    assert len({(s["marker"], tuple(s["color"])) for s in crowded[:4]}) == 4  # the unkeyed series take free styles
    # a different alpha that lands on a taken index gets a free one, not the same style
    near = plots.assign_styles([plots.style_index(alpha=0.35), plots.style_index(alpha=0.375)], sns)
    assert near[0] != near[1]
