"""The Snakemake workflow end to end on the smoke config, in a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr
import yaml

import browser
import test_docs
from conftest import REPO, copy_repository
from figure_helpers import assert_no_interval_from_one_seed, assert_one_column_panels_and_legible_text, draw, \
    legend_styles
import linflow
from linflow import grid, record
from workflow_helpers import docutils_messages, scheduled_jobs, snakemake

pytestmark = pytest.mark.workflow
SMOKE = REPO / "tests" / "config" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    repo = copy_repository(tmp_path_factory.mktemp("smoke") / "repo", SMOKE)
    snakemake(repo, "--cores", "2")
    return repo


def smoke_config():
    return yaml.safe_load(SMOKE.read_text())


def expected_runs(config):
    plan = grid.plan(config)
    for name, experiment in plan.experiments.items():
        for chunk in experiment.chunks:
            for case, width, seed in chunk.runs:
                yield name, chunk.id, case, width, seed


def n_chunks(config=None):
    plan = grid.plan(config or smoke_config())
    return sum(len(e.chunks) for e in plan.experiments.values())


def test_all_outputs_exist_with_the_schema(smoke_repo):
    config = smoke_config()
    for name in config["datasets"]:
        ds = record.open_netcdf(smoke_repo / "data" / name / "dataset.nc", ("X", "Y", "theta_hat"))
        assert ds.attrs["parameters_hash"]
    for name, chunk, case, width, seed in expected_runs(config):
        path = smoke_repo / "results" / name / "runs" / f"{chunk}.nc"  # the chunk's records file
        table = record.open_table(smoke_repo / "results" / name / "chunks" / f"{chunk}.nc")
        (i,) = np.flatnonzero((table["case"].values == case) & (table["seed"].values == seed))
        assert table["file"].values[i] == str(path.relative_to(smoke_repo))
        ds = record.open_run(path, int(table["record"].values[i]))  # raises if any schema variable is missing
        assert ds.attrs["width"] == width and ds.attrs["case"] == case and ds.attrs["seed"] == seed
        assert ds["status"].item() == "converged", path
        assert ds["time"].attrs["units"] and ds["loss"].attrs["long_name"]
        for key in ("linflow_version", "git_commit", "parameters", "parameters_hash", "history"):
            assert key in ds.attrs
    for name in config["experiments"]:
        for suffix in ("summary.nc", "summary.csv", "runs.csv", "fits.csv"):
            assert (smoke_repo / "results" / name / suffix).stat().st_size > 0
    summary = linflow.open_sweep(smoke_repo / "results" / "implicit_bias")
    assert np.all(np.isfinite(summary["slope_fro"].values))
    assert np.all(np.isfinite(summary["slope_fro_ci_low"].values))
    assert (summary["status"] == "converged").all()


def test_rates_beat_their_bounds(smoke_repo):
    """The measured late-phase rate is at least the Corollary 4 and Theorem 3 rates (flow runs)."""
    for name in ("alpha_sweep", "conditioning_1", "conditioning_10"):
        summary = linflow.open_sweep(smoke_repo / "results" / name)
        assert np.all(summary["ratio_rate_cor4"].values >= 1 - 1e-6)
        assert np.all(summary["ratio_rate_thm3"].values >= 1 - 1e-6)


def test_figures_are_images(smoke_repo):
    for name in smoke_config()["figures"]:
        png = smoke_repo / "results" / "figures" / f"{name}.png"
        image = mpimg.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.01  # not blank
        assert (smoke_repo / "results" / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("name", list(smoke_config()["figures"]))
def test_figures_are_legible_in_one_column(smoke_repo, name):
    """Panels of about one printed column (<= 3.5 in wide each), no text under 7 pt, and no
    config key (case or experiment name) as a label: cases are written out (a = ..., α = ...)."""
    config = smoke_config()
    figure = config["figures"][name]
    plt, fig, texts = draw(figure["kind"], [smoke_repo / "results" / e / "summary.nc" for e in figure["experiments"]])
    try:
        assert_one_column_panels_and_legible_text(fig, texts)
        keys = {case for e in figure["experiments"] for case in config["experiments"][e]["cases"]}
        keys |= set(figure["experiments"]) | {name}
        keys = {key for key in keys if any(c.isdigit() or c == "_" for c in key)}  # "balanced" is a word
        raw = [t.get_text() for t in texts if any(key in t.get_text() for key in keys)]
        assert not raw, raw
    finally:
        plt.close(fig)


def test_a_case_keeps_its_colour_and_marker_in_every_figure(smoke_repo):
    """α = 0.50 is drawn by gradient descent (implicit_bias) and by the flow (alpha_sweep): the
    same colour and marker in the Fig. 7, exponent and tightness figures (the method changes
    only the line style), and no two alphas share one."""
    config = smoke_config()
    seen = {}  # alpha -> {(colour, marker): [figures]}
    for name, figure in config["figures"].items():
        plt, fig, texts = draw(figure["kind"], [smoke_repo / "results" / e / "summary.nc" for e in figure["experiments"]])
        try:
            assert_no_interval_from_one_seed(texts)
            for label, style in legend_styles(fig).items():
                alpha = re.search(r"α = ([0-9.]+)", label)
                if alpha:
                    seen.setdefault(alpha[1], {}).setdefault(style, set()).add(name)
        finally:
            plt.close(fig)
    assert {"fig7_implicit_bias", "exponent_law", "bound_tightness"} <= set().union(*seen["0.50"].values())
    for alpha, styles in seen.items():
        assert len(styles) == 1, f"α = {alpha} is drawn in {len(styles)} styles: {styles}"
    first = [next(iter(styles)) for styles in seen.values()]
    assert len(set(first)) == len(first), seen


def test_an_infinite_theorem12_bound_is_annotated(smoke_repo, tmp_path):
    """Where the Theorem 12 bound overflows (kappa = 100 in the default sweep) the conditioning
    and tightness figures say so instead of silently drawing nothing."""
    summaries = []
    for name in ("conditioning_1", "conditioning_10"):
        ds = xr.open_dataset(smoke_repo / "results" / name / "summary.nc").load()
        if name == "conditioning_10":
            ds["theorem12_bound"] = ds["theorem12_bound"].copy(data=np.full(ds["theorem12_bound"].shape, np.inf))
            ds["ratio_distance_thm12"] = ds["ratio_distance_thm12"] * 0
        (tmp_path / name).mkdir()
        ds.to_netcdf(tmp_path / name / "summary.nc")
        summaries.append(tmp_path / name / "summary.nc")
    for kind in ("conditioning", "tightness"):
        plt, fig, texts = draw(kind, summaries)
        plt.close(fig)
        notes = [t.get_text() for t in texts if "∞" in t.get_text()]
        assert notes, f"{kind}: no annotation of the infinite bound"
        assert kind == "tightness" or any("κ = 10" in note for note in notes), notes


def test_the_stiff_solver_runs_end_to_end_and_the_conditioning_figure_marks_it(smoke_repo):
    """conditioning_10 is integrated with BDF (solver: bdf), conditioning_1 with DOP853 (auto):
    the summaries carry the solver and its counts, and the figure shades the BDF range."""
    paths = [smoke_repo / "results" / name / "summary.nc" for name in ("conditioning_1", "conditioning_10")]
    dop, bdf = (xr.open_dataset(path).load() for path in paths)
    assert set(dop["solver"].values.ravel()) == {"dop853"} and np.isnan(dop["n_steps"].values).all()
    assert set(bdf["solver"].values.ravel()) == {"bdf"} and (bdf["n_precond_setups"].values > 0).all()
    assert (bdf["status"].values == "converged").all()
    plt, fig, texts = draw("conditioning", paths)
    try:
        assert "integrated with BDF (solver auto)" in [t.get_text() for t in texts]
        shaded = [p for ax in fig.axes for p in ax.patches if p.get_facecolor()[:3] == (0.92, 0.92, 0.92)]
        assert len(shaded) == 2  # one band per panel
    finally:
        plt.close(fig)


def test_alphas_outside_theorem12s_range_run_end_to_end_with_its_quantities_nan_and_labelled(smoke_repo):
    """alpha = 0.2 and 1 (outside 1/4 < alpha <= 1/2) next to 0.5: every run converges, the
    Theorem 12 bound (per run, with its reason in the run's record) and exponent are NaN outside
    the range only, the limit-distance fit exists everywhere, and the exponents figure draws the
    theorem's line on its range only and the slopes where they were fitted."""
    folder = smoke_repo / "results" / "alpha_transition"
    sweep = linflow.open_sweep(folder)
    assert (sweep["status"].values == "converged").all()
    inside = sweep["alpha"].values == 0.5
    assert sorted(sweep["alpha"].values) == [0.2, 0.5, 1.0]
    exponent = sweep["theory_exponent"].values
    assert exponent[inside] == pytest.approx([-0.5]) and np.isnan(exponent[~inside]).all()
    assert "(here: 0.2, 1)" in sweep["theory_exponent"].attrs["comment"]
    bound = sweep["theorem12_bound"].values
    assert np.isfinite(bound[inside]).all() and np.isnan(bound[~inside]).all()
    assert np.isfinite(sweep["slope_null_fro"].values).all()
    for case, alpha in zip(sweep["case"].values, sweep["alpha"].values):
        where = dict(case=case, width=sweep["width"].values[-1], seed=sweep["seed"].values[0])
        run = record.open_run(folder / str(sweep["file"].sel(where).item()), int(sweep["record"].sel(where).item()))
        comment = run["theorem12_bound"].attrs.get("comment", "")
        assert ("outside Theorem 12's range" in comment) == (alpha != 0.5), (alpha, comment)

    paths = [smoke_repo / "results" / name / "summary.nc" for name in ("alpha_transition", "alpha_transition_m3")]
    plt, fig, texts = draw("exponents", paths)
    try:
        ax = fig.axes[0]
        lines = {line.get_label(): line for line in ax.get_lines()}
        theorem = next(line for label, line in lines.items() if label.startswith("Theorem 12"))
        x = np.asarray(theorem.get_xdata())
        assert x.min() > 0.25 and x.max() == 0.5 and x.size > 10
        np.testing.assert_allclose(theorem.get_ydata(), -(2 * x - 0.5))
        assert any("not a theorem" in label for label in lines)
        limit = next(c for c in ax.containers if c.get_label() == "m = 1: slope of the limit distance (95% CI)")
        order = np.argsort(sweep["alpha"].values)
        np.testing.assert_allclose(limit.lines[0].get_ydata(), sweep["slope_null_fro"].values[order])
    finally:
        plt.close(fig)
    plt, fig, texts = draw("exponents", [smoke_repo / "results" / "alpha_sweep" / "summary.nc"])
    try:  # alpha_sweep stays inside the range: no reading drawn
        assert not any("not a theorem" in line.get_label() for line in fig.axes[0].get_lines())
    finally:
        plt.close(fig)
    for kind in ("implicit_bias", "tightness"):  # a NaN bound is "no bound", never "overflows"
        plt, fig, texts = draw(kind, [paths[0]])
        try:
            words = [t.get_text() for t in texts]
            assert any("α outside 1/4 < α ≤ 1/2" in w for w in words), (kind, words)
            overflows = [w for w in words if "∞" in w]
            assert not any("α = 0.20" in w or "α = 1.00" in w for w in overflows), overflows
            assert not any(w.endswith("nan") or "nan]" in w for w in words), words
        finally:
            plt.close(fig)


def test_the_incremental_learning_figure_draws_the_records_singular_values(smoke_repo):
    """One panel per case at the largest width, ordered by alpha, one line per singular value,
    read from the run records."""
    folder = smoke_repo / "results" / "alpha_transition_m3"
    sweep = linflow.open_sweep(folder)
    plt, fig, texts = draw("incremental", [folder / "summary.nc"])
    try:
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in panels] == ["(a) α = 0.50, h = $10^{4}$", "(b) α = 1.00, h = $10^{4}$"]
        for ax, case in zip(panels, ("alpha0.5", "alpha1")):
            where = dict(case=case, width=10_000, seed=0)
            run = record.open_run(folder / str(sweep["file"].sel(where).item()), int(sweep["record"].sel(where).item()))
            keep = run["time"].values > 0
            lines = ax.get_lines()
            assert len(lines) == 3
            for i, line in enumerate(lines):
                np.testing.assert_array_equal(line.get_xdata(), run["time"].values[keep])
                np.testing.assert_array_equal(line.get_ydata(), run["product_singular_values"].values[keep, i])
    finally:
        plt.close(fig)


def test_second_run_has_nothing_to_do(smoke_repo):
    assert scheduled_jobs(smoke_repo) == Counter()


@pytest.fixture(scope="module")
def smoke_report(smoke_repo):
    build = snakemake(smoke_repo, "--report", "report.html", timeout=300)
    (smoke_repo / "report.log").write_text(build.stdout + build.stderr)
    return smoke_repo / "report.html"


def test_report_is_self_contained(smoke_report):
    html = smoke_report.read_text(errors="replace")
    assert len(html) > 100_000
    for name in smoke_config()["figures"]:
        assert name in html


def test_report_captions_render_without_docutils_messages(smoke_report):
    """A caption docutils cannot parse (``Delta_+`` read as a link) prints "(ERROR/3) ..." while
    the report is built and shows a "System Message" block in the page; neither may appear."""
    build_output = (smoke_report.parent / "report.log").read_text()
    assert not docutils_messages(build_output), "\n".join(docutils_messages(build_output))
    html = smoke_report.read_text(errors="replace")
    assert not docutils_messages(html), "\n".join(docutils_messages(html))


def expected_report(config) -> dict:
    """{category: {subcategory: [labels]}} the report must show: per experiment its two
    tables and the figures that read only it; figures reading several under "across experiments"."""
    expected = {name: {"Tables": ["fitted exponents (fits.csv)", "statistics per width (summary.csv)"]}
                for name in config["experiments"]}
    for name, figure in config["figures"].items():
        category = figure["experiments"][0] if len(figure["experiments"]) == 1 else "across experiments"
        expected.setdefault(category, {}).setdefault("Figures", []).append(name)
    return expected


def _click_menu(page, text):
    page.locator("a", has=page.locator(f"span:text-is('{text}')")).first.click()


def _menu(page, *items):
    """Back to the report's main menu (the breadcrumbs' home link), then click ``items``."""
    page.locator("nav ol li a").first.click()
    page.wait_for_selector("text=Statistics", timeout=30_000)
    for item in items:
        _click_menu(page, item)


# Phrases of the captions (workflow/report/*.rst): the right caption is shown for each entry.
CAPTIONS = {"spectrum": "Imbalance spectrum", "convergence": "Convergence against width",
            "imbalanced": "Imbalanced initialization", "implicit_bias": "Implicit bias against width",
            "exponents": "Exponent law across alpha", "incremental": "Incremental learning", "tightness": "Tightness of the bounds",
            "conditioning": "Conditioning", "fitted exponents (fits.csv)": "Fitted exponents of experiment",
            "statistics per width (summary.csv)": "Statistics per width and tightness of the bounds"}


def _check_figure(page, label):
    image = page.locator("img[src^='data:image/png']")
    image.wait_for(timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=10_000)
    assert image.evaluate("img => img.naturalWidth") > 1000, f"{label}: image not rendered"
    # Drawn on a canvas: every pixel opaque (a truncated PNG decodes partly, the rest transparent),
    # and some ink (not blank).
    transparent, ink = image.evaluate("""img => {
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let transparent = 0, ink = 0;
        for (let i = 0; i < data.length; i += 4 * 7) {
            if (data[i + 3] < 255) transparent++;
            if (data[i] + data[i + 1] + data[i + 2] < 384) ink++;
        }
        return [transparent, ink];
    }""")
    assert transparent == 0 and ink > 1000, f"{label}: {transparent} transparent pixels, {ink} dark ones"


def _check_table(page, label):
    frame = page.frame_locator("iframe")
    rows, headers = frame.locator("table.sortable tbody tr"), frame.locator("table.sortable thead th")
    rows.first.wait_for(timeout=10_000)
    assert rows.count() >= 1 and headers.count() >= 5, f"{label}: table empty"
    headers.nth(2).click()  # sorting runs the page's own script
    assert frame.locator("th.asc").count() == 1, f"{label}: sorting did not run"


def test_report_renders_in_a_browser(smoke_report, capsys):
    """The report in headless Chromium: no JavaScript errors; every category, figure (an image
    that loads, with its caption) and table (a frame holding a sortable table with rows, with
    its caption) of the config is there, grouped by experiment; the run statistics render.
    Screenshots go to tests/artifacts/ (LINFLOW_TEST_ARTIFACTS)."""
    executable = browser.chromium()
    start = browser.sync_playwright()
    browser.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    config = smoke_config()
    kinds = {name: figure["kind"] for name, figure in config["figures"].items()}
    errors = []
    with start() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = chromium.new_page(viewport={"width": 1600, "height": 1000})
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto(smoke_report.as_uri(), wait_until="load")
            page.wait_for_selector("text=Statistics", timeout=30_000)
            page.screenshot(path=browser.ARTIFACTS / "report.png")
            for category, subcategories in expected_report(config).items():
                for subcategory, labels in subcategories.items():
                    # a category with one subcategory opens it at once
                    menu = (category,) if len(subcategories) == 1 else (category, subcategory)
                    _menu(page, *menu)
                    shown = sorted(page.locator("table tbody tr td:first-child").all_inner_texts())
                    assert shown == sorted(labels), f"{category} / {subcategory}: {shown} != {sorted(labels)}"
                    for label in labels:
                        _menu(page, *menu)
                        row = page.locator("table tbody tr", has=page.locator(f"td:text-is('{label}')"))
                        row.locator("a").nth(0).click()  # view
                        (_check_figure if subcategory == "Figures" else _check_table)(page, label)
                        if label in ("fig6_imbalanced_init", "conditioning") or (
                                category == "alpha_sweep" and label.startswith("fitted")):
                            name = f"report_{category}_{label.split()[0]}".replace(" ", "_")
                            page.screenshot(path=browser.ARTIFACTS / f"{name}.png")
                        row.locator("a").nth(1).click()  # info: the caption
                        phrase = CAPTIONS[kinds.get(label, label)]
                        page.get_by_text(phrase).first.wait_for(timeout=10_000)
                        shown_messages = page.get_by_text("System Message").count()
                        assert shown_messages == 0, f"{label}: the caption shows a docutils System Message"
            _menu(page, "Statistics")
            page.wait_for_selector("#runtimes svg, #runtimes canvas", timeout=30_000)
            page.wait_for_selector("#timeline svg, #timeline canvas", timeout=30_000)
            page.screenshot(path=browser.ARTIFACTS / "report_statistics.png")
        finally:
            chromium.close()
    with capsys.disabled():  # shown in the test output even when the test passes
        print(f"\nreport screenshots: {', '.join(str(p) for p in sorted(browser.ARTIFACTS.glob('report*.png')))}")
    assert not errors, "\n".join(errors)


class EditedFile:
    """Change a file of the smoke copy for the duration of a ``with`` block."""

    def __init__(self, path: Path, edit):
        self.path, self.edit = path, edit

    def __enter__(self):
        self.original = self.path.read_text()
        self.path.write_text(self.edit(self.original))

    def __exit__(self, *exc):
        self.path.write_text(self.original)


def edit_config(repo, change):
    def edit(text):
        config = yaml.safe_load(text)
        change(config)
        return yaml.safe_dump(config, sort_keys=False)

    return EditedFile(repo / "config.yaml", edit)


def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(config):
        node = config
        for part in path:
            node = node[part]
        node[key] = value

    return change


CONFIG_CHANGES = [
    # factorization: its 2 chunks (one per width), its summary, the two figures that read it.
    ("experiment parameter", _set("experiments", "factorization", "simulation", "step", 0.04),
     Counter(simulate=2, aggregate=1, figure=2, all=1)),
    # A third seed joins seed block 0 of each of the 3 widths; implicit_bias feeds 2 figures.
    ("added seed", _set("experiments", "implicit_bias", "seeds", 3), Counter(simulate=3, aggregate=1, figure=2, all=1)),
    ("added width", _set("experiments", "implicit_bias", "widths", [50, 200, 800, 1600]),
     Counter(simulate=1, aggregate=1, figure=2, all=1)),
    # kappa_10 feeds conditioning_10 (2 chunks) and the conditioning figure.
    ("dataset parameter", _set("datasets", "kappa_10", "noise", 0.02),
     Counter(dataset=1, simulate=2, aggregate=1, figure=1, all=1)),
    # Bug 5: a default written out, a parameter of another method: the jobs do not change.
    ("default written out", _set("experiments", "alpha_sweep", "simulation", "rtol", 1e-10), Counter()),
    ("keys reordered", lambda config: config.update(datasets=dict(reversed(list(config["datasets"].items())))),
     Counter()),
]


@pytest.mark.parametrize("label,change,expected", CONFIG_CHANGES, ids=[c[0] for c in CONFIG_CHANGES])
def test_config_change_reruns_exactly_what_depends_on_it(smoke_repo, label, change, expected):
    with edit_config(smoke_repo, change):
        assert scheduled_jobs(smoke_repo) == expected


CODE_CHANGES = [  # module edited -> jobs rerun (computed from what each command imports)
    ("plots.py", lambda config: Counter(figure=len(config["figures"]), all=1)),
    ("aggregate.py", lambda config: Counter(aggregate=len(config["experiments"]), figure=len(config["figures"]),
                                            all=1)),
    ("batch.py", lambda config: Counter(simulate=n_chunks(config), aggregate=len(config["experiments"]),
                                        figure=len(config["figures"]), all=1)),
    # the package __init__ imports the simulator lazily: datasets do not depend on it
    ("kernels.py", lambda config: Counter(simulate=n_chunks(config), aggregate=len(config["experiments"]),
                                          figure=len(config["figures"]), all=1)),
    ("cli.py", lambda config: Counter(dataset=len(config["datasets"]), simulate=n_chunks(config),
                                      aggregate=len(config["experiments"]), figure=len(config["figures"]), all=1)),
]


@pytest.mark.parametrize("module,expected", CODE_CHANGES, ids=[c[0] for c in CODE_CHANGES])
def test_code_change_reruns_the_stages_that_import_it(smoke_repo, module, expected):
    with EditedFile(smoke_repo / "src" / "linflow" / module, lambda t: t + "\n_EDITED = 1\n"):
        jobs = scheduled_jobs(smoke_repo)
    assert jobs == expected(smoke_config())


DOCUMENTATION_EDITS = [  # what the code does is unchanged: nothing reruns
    ("comment in kernels.py", "kernels.py", lambda t: t + "\n# a comment\n"),
    ("docstring in simulate.py", "simulate.py", lambda t: t.replace('"""Gradient flow, gradient descent',
                                                                     '"""Gradient flow (edited), gradient descent', 1)),
    ("a parameter's help text", "parameters.py", lambda t: t.replace('"stop when the excess loss has fallen by this '
                                                                      'factor"', '"stop once the excess loss fell by '
                                                                      'this factor"', 1)),
]


@pytest.mark.parametrize("label,module,edit", DOCUMENTATION_EDITS, ids=[e[0] for e in DOCUMENTATION_EDITS])
def test_documentation_edits_rerun_nothing(smoke_repo, label, module, edit):
    path = smoke_repo / "src" / "linflow" / module
    assert edit(path.read_text()) != path.read_text(), "the edit must apply"
    with EditedFile(path, edit):
        assert scheduled_jobs(smoke_repo) == Counter()


def test_lint_is_clean(smoke_repo):
    proc = snakemake(smoke_repo, "--lint", timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output


def test_snakemake_files_are_formatted():
    """snakefmt (the snakemake-workflows convention) finds nothing to change."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


INVALID = [  # more cases, without Snakemake, in tests/test_parameters.py
    ("unknown method", lambda c: c["experiments"]["alpha_sweep"]["simulation"].update(method="euler"),
     ["'euler' is not one of ['flow', 'gd', 'gd_explicit', 'sgd', 'sgd_explicit']", "method"]),
    ("alpha on a scaled case", lambda c: c["experiments"]["imbalanced_init"]["cases"]["balanced"].update(alpha=0.4),
     ["key 'alpha' is not used here (it applies only when init is one of gaussian, invariant)", "balanced"]),
    ("unknown dataset", lambda c: c["experiments"]["implicit_bias"].update(dataset="nope"),
     ["experiments.implicit_bias.dataset", "allowed"]),
]


@pytest.mark.parametrize("label,change,words", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_fails_before_any_job(tmp_path, label, change, words):
    repo = copy_repository(tmp_path / "repo", SMOKE)
    config = yaml.safe_load((repo / "config.yaml").read_text())
    change(config)
    (repo / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(repo, "--cores", "1", timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in output, f"{label}: {word!r} not in:\n{output[-3000:]}"
    assert not (repo / "data").exists() and not (repo / "results").exists()


def test_doc_notebook_examples_run_on_the_smoke_sweep(smoke_repo, monkeypatch):
    """The docs' Python blocks that read a finished sweep (marked, see tests/test_docs.py)."""
    examples = test_docs.sweep_examples()
    assert any("open_sweep" in code and "assert" in code for _, code in examples)
    monkeypatch.chdir(smoke_repo)
    for path, code in examples:
        exec(compile(code, path.name, "exec"), {})


def test_a_chunk_whose_spec_exceeds_the_command_line_limit_runs(tmp_path):
    """A chunk holds every case: 520 swept cases make a spec of ~138 KB, past the 128 KiB one
    command-line argument may have (every job failed with E2BIG when the spec was one). The job
    plans its own chunk from the config instead, and a changed config is refused, not run."""
    config = {"seed_entropy": 1, "datasets": {"d": {"kind": "gaussian", "n": 6, "N": 3, "m": 1}},
              "experiments": {"e": {"dataset": "d", "widths": [10], "seeds": 1,
                                    "cases": {"a": {"init": "gaussian", "sampling": "wishart",
                                                    "sweep": {"alpha": {"linspace": [0.26, 0.5], "num": 520}}}},
                                    "simulation": {"method": "flow", "max_time": 1000.0}}},
              "figures": {}}
    repo = copy_repository(tmp_path / "repo")
    (repo / "config.yaml").write_text(yaml.safe_dump(config))
    plan = grid.plan(config)
    (chunk,) = plan.experiments["e"].chunks
    assert len(grid.canonical(plan.chunk_spec(chunk))) > 128 * 1024
    snakemake(repo, "--cores", "1", "results/e/chunks/h10_b0.nc")
    table = record.open_table(repo / "results" / "e" / "chunks" / "h10_b0.nc")
    assert table.sizes["run"] == 520 and set(table["status"].values) == {"converged"}
    planned = repo / ".linflow" / "config.json"
    changed = json.loads(planned.read_text())
    changed["experiments"]["e"]["simulation"]["max_time"] = 10.0
    planned.write_text(json.dumps(changed))
    proc = subprocess.run(
        [sys.executable, "-m", "linflow", "chunk", "--dataset", str(repo / "data" / "d" / "dataset.nc"), "--plan",
         str(planned), "--experiment", "e", "--chunk", "h10_b0", "--spec-hash", grid.spec_hash(plan.chunk_spec(chunk)),
         "--records", str(tmp_path / "r.nc"), "--table", str(tmp_path / "t.nc")], capture_output=True, text=True)
    assert proc.returncode == 2 and "plans differently" in proc.stderr and not (tmp_path / "t.nc").exists()


def test_a_simulation_job_refuses_runs_from_its_declared_memory(smoke_repo):
    """The job gets its mem_mb, so whether a run is refused does not depend on the node's load."""
    proc = snakemake(smoke_repo, "-n", "-p", "--forceall", "--cores", "2", timeout=300)
    commands = [line for line in (proc.stdout + proc.stderr).splitlines() if "linflow chunk" in line]
    assert commands and all(re.search(r"--max-memory-mb \d+ ", line) for line in commands), commands[:2]


def test_a_config_typo_reads_as_one_line_per_problem(tmp_path):
    repo = copy_repository(tmp_path / "repo", SMOKE)
    config = yaml.safe_load((repo / "config.yaml").read_text())
    experiment = config["experiments"]["alpha_sweep"]
    experiment["widhts"] = experiment.pop("widths")
    experiment["simulation"]["max_steps"] = 10
    (repo / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(repo, "-n", timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "experiments.alpha_sweep: unknown key 'widhts'; allowed: cases, chunk_size" in output
    assert "did you mean 'widths'?" in output
    assert ("experiments.alpha_sweep.simulation: key 'max_steps' is not used here (it applies only when method is "
            "one of gd, gd_explicit, sgd, sgd_explicit)") in output
    assert len(output.splitlines()) < 15, output  # not the whole schema
