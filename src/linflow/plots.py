"""The paper's figures and the extensions', drawn with seaborn from NetCDF files only.

Plots never recompute physics: every number drawn is a variable of a summary cube
(:func:`linflow.open_sweep`) or of the run records it lists. ``draw(kind, inputs, png=...,
pdf=...)`` is the single entry point (``inputs``: summary.nc files); matplotlib and seaborn are
imported lazily.

Style: every panel is :data:`PANEL` inches (one printed column), fonts are at least 7 pt at
that size, colours are seaborn's colour-blind-safe palette and every series also has its own
marker (and, where a bound goes with it, its own line style), so the figures read in grey
scale too. Cases, experiments and quantities are labelled in words and symbols, never by
their config keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import record
from .theory import THEOREM12_ALPHA as THEOREM12_RANGE

#: Figure kinds and the inputs they read.
FIGURES = {
    "spectrum": "run records listed by summary.nc (Fig. 2 left / Fig. 4: imbalance spectrum)",
    "convergence": "run records listed by summary.nc (Fig. 5: loss and rate per width, with bounds)",
    "imbalanced": "run records listed by summary.nc (Fig. 3 / Fig. 6: imbalanced and balanced initializations)",
    "implicit_bias": "summary.nc (Fig. 7: distance to the min-norm solution against width)",
    "exponents": "summary.nc files (fitted exponent of the distance against alpha, Theorem 12 on its range)",
    "incremental": "run records listed by summary.nc (singular values of U1 V^T over time, largest width)",
    "tightness": "summary.nc files (measured rate / Corollary 4 rate, distance / Theorem 12 bound)",
    "conditioning": "summary.nc files (rate and distance against the condition number)",
    "sgd_batch": "summary.nc (mini-batch SGD: distance against width per batch size, fitted exponents)",
    "gd_step": "summary.nc (gradient-descent step: distance and convergence time against the step, per width)",
}

#: Width and height (inches) of one panel: one column of a two-column paper.
PANEL = (3.4, 2.6)
#: Font sizes (points) at that size; nothing smaller than 7 pt.
FONT_SIZES = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
              "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 9}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DPI = 300
TIME_LABEL = "gradient-flow time $t$"
RATE_UNITS = "1 / unit of $t$"
DISTANCE_FRO = r"$\|UV^\top - \hat\Theta\|_F$"
DISTANCE_OP = r"$\|UV^\top - \hat\Theta\|_2$"
METHODS = {"flow": "gradient flow", "gd": "gradient descent", "sgd": "SGD", "gd_explicit": "gradient descent",
           "sgd_explicit": "SGD"}
#: Line style of each method: a case drawn by two methods keeps its colour and marker.
METHOD_DASHES = {"gradient flow": "-", "gradient descent": "--", "SGD": "-."}
#: Colours and lines of what is not a case (fitted slopes, reference lines): black and grey,
#: so that no palette colour means two things.
NEUTRAL = ("k", "0.45")
N_STYLES = len(MARKERS)


def style_index(*, alpha: float | None = None, width: float | None = None):
    """The style key of a case, the same in every figure: ``(palette and marker index, identity)``,
    by its initialization scale alpha (one index per 0.05: alpha = 0.30 -> 1, ..., 0.50 -> 5) or,
    for series that are widths, by h (one index per half decade). None for cases without either."""
    if alpha is not None and np.isfinite(alpha):
        return int(round((alpha - 0.25) / 0.05)) % N_STYLES, ("alpha", float(alpha))
    if width is not None and np.isfinite(width):
        return int(round(2 * np.log10(width))) % N_STYLES, ("width", float(width))
    return None


def assign_styles(keys, sns) -> list[dict]:
    """``color`` and ``marker`` for each series; ``keys`` are :func:`style_index` values. Series
    with the same key share a style (one case drawn by two methods); a key keeps its index
    unless a different key of the figure took it first; series without a key (None) and such
    a key get the next unused index."""
    palette = _colors(sns, N_STYLES)
    index_of, used = {}, set()
    for key in keys:
        if key is not None and key[1] not in index_of and key[0] not in used:
            index_of[key[1]] = key[0]
            used.add(key[0])
    free = (i for i in range(N_STYLES * 10) if i % N_STYLES not in used)
    styles = []
    for key in keys:
        if key is None:
            index = next(free) % N_STYLES
        else:
            if key[1] not in index_of:
                index_of[key[1]] = next(free) % N_STYLES
            index = index_of[key[1]]
        styles.append(dict(color=palette[index], marker=MARKERS[index]))
    return styles


def _case_key(summary, case):
    """:func:`style_index` of a summary's case (by its alpha where it has one)."""
    init = summary["init"].sel(case=case).item() if "init" in summary.coords else "gaussian"
    if "alpha" in summary.coords and init in ("gaussian", "invariant"):
        return style_index(alpha=float(summary["alpha"].sel(case=case).item()))
    return None


def width_text(width: float) -> str:
    """A width as people write it: 1000, 3162, $10^{6}$, $3.16 \\times 10^{4}$."""
    width = float(width)
    exponent = int(np.floor(np.log10(width))) if width > 0 else 0
    if width > 0 and 10.0**exponent == width and exponent >= 4:
        return f"$10^{{{exponent}}}$"
    if width < 1e4:
        return f"{int(width)}" if width == int(width) else f"{width:g}"
    return f"${width / 10.0**exponent:.3g} \\times 10^{{{exponent}}}$"


def _seeds_text(summary) -> str:
    """What a mean over seeds is: "mean over 5 seeds, 95% CI", or "one seed" (no interval)."""
    n = int(summary.sizes.get("seed", 1))
    return "one seed" if n == 1 else f"mean over {n} seeds, 95% CI"


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind",
                  rc={**FONT_SIZES, "lines.linewidth": 1.2, "lines.markersize": 4, "pdf.fonttype": 42,
                      "axes.titleweight": "bold", "legend.frameon": True, "legend.framealpha": 0.9})
    return plt, sns


def _panels(plt, ncols: int, nrows: int = 1, height: float = PANEL[1], legend_rows: int = 0):
    """A figure of ``nrows x ncols`` panels of :data:`PANEL` size (plus room for a legend below)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL[0] * ncols, height * nrows + 0.16 * legend_rows),
                             squeeze=False, layout="constrained")
    return fig, axes


def _legend_below(fig, handles, labels, ncols: int) -> None:
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, ncols), frameon=False)


def _legend_of_panels(fig, axes, ncols: int) -> None:
    """One legend below the figure: every labelled artist of ``axes``, each label once."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    _legend_below(fig, list(entries.values()), list(entries), ncols)


def _colors(sns, n: int):
    return sns.color_palette("colorblind", n_colors=max(n, 1))


def _fmt(value: float) -> str:
    """A parameter value as written in a label (0.5 -> 0.5, 0.35 -> 0.35, 1e-4 -> 1e-04)."""
    return f"{value:g}"


def case_label(params: dict, name: str = "") -> str:
    """A case in words: ``α = 0.50``, ``a = 0.1, b = 0.1``, ``balanced (a = 0.1, b = 0.1)``."""
    init = params.get("init")

    def number(key):
        value = params.get(key)
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)

    alpha, a, b = number("alpha"), number("a"), number("b")
    if init in ("gaussian", "invariant") and alpha is not None:
        prefix = "invariant set, " if init == "invariant" else ""
        # two decimals where they are exact (0.50), all digits otherwise: 0.375 is not 0.38
        return f"{prefix}α = {alpha:.2f}" if round(alpha, 2) == alpha else f"{prefix}α = {_fmt(alpha)}"
    if init == "scaled" and a is not None and b is not None:
        return f"a = {_fmt(a)}, b = {_fmt(b)}"
    if init == "balanced":
        return f"balanced (a = {_fmt(a)}, b = {_fmt(b)})" if a is not None and b is not None else "balanced"
    return name


def _run_params(ds) -> dict:
    return json.loads(ds.attrs.get("parameters", "{}"))


def _run_case_label(ds) -> str:
    return case_label(_run_params(ds), str(ds.attrs.get("case", "")))


#: Case coordinates that :func:`case_label` already writes, or that do not tell cases apart in words.
_LABELLED = ("init", "alpha", "a", "b", "sampling", "wishart_min_width")


def _summary_case_label(summary, case) -> str:
    """:func:`case_label`, plus every other case parameter that differs between the summary's
    cases (e.g. ``step = 0.1``): cases differing only in a simulation setting read differently."""
    params = {name: summary[name].sel(case=case).item() for name in ("init", "alpha", "a", "b")
              if name in summary.coords}
    label = case_label(params, str(case))
    varying = [name for name, coord in summary.coords.items() if coord.dims == ("case",) and name not in _LABELLED
               and name != "case" and len({str(v) for v in coord.values}) > 1]
    extra = [f"{name} = {_fmt(v) if isinstance(v, float) else v}" for name in varying
             for v in [summary[name].sel(case=case).item()]]
    return ", ".join([label] + extra)


def _method(summary) -> str:
    method = json.loads(summary.attrs.get("simulation", "{}")).get("method", "")
    return METHODS.get(method, method)


def _summaries(paths) -> list:
    return [record.open_netcdf(p, ("distance_fro_mean", "slope_fro", "file")) for p in paths]


def _open_run(summary, path, **where):
    """The run record of ``(case, width, seed)`` of the summary at ``path`` (None: no run)."""
    name = str(summary["file"].sel(where).item())
    if not name:
        return None
    index = int(summary["record"].sel(where).item()) if "record" in summary else -1
    return record.open_run(Path(path).parent / name, None if index < 0 else index)


def _runs(paths) -> list:
    """The run records of the first seed of every (case, width) of the summaries ``paths``, in
    the order of the config (cases) and of increasing width."""
    runs = []
    for path in paths:
        summary = _summaries([path])[0]
        seed = summary["seed"].values[0]
        for case in summary["case"].values:
            for width in summary["width"].values:
                run = _open_run(summary, path, case=case, width=width, seed=seed)
                if run is not None:
                    runs.append(run)
    return runs


def _status_note(ax, runs) -> None:
    bad = [f"{_run_case_label(ds)}, h = {width_text(ds.attrs['width'])}, seed {ds.attrs.get('seed')}: "
           f"{ds['status'].item().replace('_', ' ')}" for ds in runs if ds["status"].item() != "converged"]
    if bad:
        ax.text(0.01, 0.01, "not converged: " + "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""),
                transform=ax.transAxes, fontsize=7, color="#B2182B", va="bottom", wrap=True)


def _positive_time(ds, *names):
    """Time > 0 (log axes) and the variables ``names`` there."""
    t = ds["time"].values
    keep = t > 0
    return (t[keep], *(np.asarray(ds[name].values, float)[keep] for name in names))


def _markevery(n_points: int, i: int, n_marks: int = 6):
    step = max(1, n_points // n_marks)
    return (min(i * max(1, step // 4), step - 1), step)


def _width_axis(ax, widths) -> None:
    """Log width axis: ticks at the widths themselves when they span less than two decades
    (log axes label no decade there), decades otherwise; never minor-tick labels."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    widths = np.unique(np.asarray(widths, dtype=float))
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if widths.size and np.log10(widths.max() / widths.min()) < 2:
        ax.xaxis.set_major_locator(FixedLocator(widths))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(widths, [width_text(w) for w in widths])
    ax.set_xlabel("hidden width $h$")


def fig_spectrum(paths, plt, sns):
    """Nonzero eigenvalues of D scaled by 1/(m h), with Delta_+, Delta_-, Delta_ (Fig. 2 left / 4)."""
    runs = _runs(paths)
    widths = sorted({int(ds.attrs["width"]) for ds in runs})
    chosen = [next(ds for ds in runs if int(ds.attrs["width"]) == w) for w in dict.fromkeys((widths[0], widths[-1]))]
    fig, axes = _panels(plt, len(chosen), legend_rows=2)
    colors = _colors(sns, 4)
    lines = ((("delta_plus", r"$\Delta_+$", "--", colors[1]), ("delta_minus", r"$\Delta_-$", ":", colors[2]),
              ("delta_under", r"$\Delta$ (effective imbalance)", "-.", colors[3])))
    for ax, ds in zip(axes[0], chosen):
        scale = 1.0 / (int(ds.attrs["m"]) * int(ds.attrs["width"]))
        eig = np.sort(ds["imbalance_eigenvalues"].values)[::-1] * scale
        eig = eig[np.abs(eig) > 1e-12 * np.abs(eig).max()]
        ax.plot(np.arange(1, eig.size + 1), eig, "o", color=colors[0], ms=3.5, label=r"eigenvalues $\lambda_i(D)$")
        for name, label, style, color in lines:
            ax.axhline(float(ds[name]) * scale, ls=style, color=color, lw=1.2, label=label)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(xlabel="eigenvalue index $i$ (nonzero eigenvalues)", ylabel=r"$\lambda_i(D)\,/\,(m h)$",
               title=f"hidden width h = {width_text(ds.attrs['width'])}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    _legend_below(fig, handles, [label + " / (m h)" if label.startswith("$\\Delta") else label for label in labels], 4)
    return fig


def _loss_and_rate(axes, runs, sns, label_of, *, log_time: bool, linear_loss_ax=None, keys=None):
    """Excess loss (log) with the Theorem 3 bound and rate with the Proposition 1 bound, one
    colour and marker per run (``keys``: their :func:`style_index`); returns legend handles and
    labels (runs, then line styles)."""
    from matplotlib.lines import Line2D

    styles = assign_styles(keys or [None] * len(runs), sns)
    handles, labels = [], []
    for i, (style_of_run, ds) in enumerate(zip(styles, runs)):
        color, marker = style_of_run["color"], style_of_run["marker"]
        if log_time:
            t, loss, bound, rate, rate_bound = _positive_time(ds, "excess_loss", "loss_bound", "inst_rate",
                                                               "rate_bound")
        else:
            t, loss, bound, rate, rate_bound = (ds["time"].values, *(ds[n].values for n in (
                "excess_loss", "loss_bound", "inst_rate", "rate_bound")))
        # log time: recorded points are log-spaced, so every k-th point; linear time: evenly along the line
        every = _markevery(t.size, i) if log_time else (0.02 * i, 0.18)
        style = dict(color=color, marker=marker, markevery=every, ms=3.5)
        axes[0].plot(t, loss, **style)
        axes[0].plot(t, bound, color=color, ls="--", lw=0.9)
        if linear_loss_ax is not None:
            linear_loss_ax.plot(t, loss, **style)
        axes[1].plot(t, np.where(rate > 0, rate, np.nan), **style)
        axes[1].plot(t, np.where(rate_bound > 0, rate_bound, np.nan), color=color, ls="--", lw=0.9)
        handles.append(Line2D([], [], color=color, marker=marker, ms=3.5))
        labels.append(label_of(ds))
    handles += [Line2D([], [], color=NEUTRAL[1], ls="-"), Line2D([], [], color=NEUTRAL[1], ls="--", lw=0.9)]
    labels += ["measured", "bound (Theorem 3 for the loss, Proposition 1 for the rate)"]
    axes[0].set(yscale="log", xlabel=TIME_LABEL, ylabel=r"excess loss $L - L^*$", title="Excess loss")
    axes[1].set(yscale="log", xlabel=TIME_LABEL, ylabel=f"rate $-\\dot L / (L - L^*)$ ({RATE_UNITS})",
                title="Instantaneous convergence rate")
    if linear_loss_ax is not None:
        linear_loss_ax.set(xlabel=TIME_LABEL, ylabel=r"excess loss $L - L^*$", title="Excess loss (linear scale)")
    if log_time:
        for ax in (*axes, *([linear_loss_ax] if linear_loss_ax is not None else [])):
            ax.set_xscale("log")
    return handles, labels


def fig_convergence(paths, plt, sns):
    """Loss with the Theorem 3 bound, rate with the Proposition 1 bound, per width (Fig. 5)."""
    runs = sorted(_runs(paths), key=lambda ds: int(ds.attrs["width"]))
    fig, axes = _panels(plt, 2, legend_rows=2)
    handles, labels = _loss_and_rate(axes[0], runs, sns, lambda ds: f"h = {width_text(ds.attrs['width'])}",
                                     log_time=False, keys=[style_index(width=int(ds.attrs["width"])) for ds in runs])
    _status_note(axes[0][0], runs)
    _legend_below(fig, handles, labels, 3)
    return fig


def fig_imbalanced(paths, plt, sns):
    """Imbalanced initializations and the balanced one: loss (linear, log) and rate (Fig. 3 / 6),
    on a log time axis, so that the fast imbalanced runs and the slow balanced one all show."""
    runs = _runs(paths)

    def label(ds):
        delta = float(ds["delta_under"])
        scale = max(abs(float(ds["delta_plus"])), abs(float(ds["delta_minus"])), abs(delta), 1e-300)
        shown = "0" if abs(delta) <= 1e-10 * scale or abs(delta) < 1e-12 else f"{delta:.3g}"
        return f"{_run_case_label(ds)}: Δ = {shown}"

    fig, axes = _panels(plt, 3, legend_rows=2)
    handles, labels = _loss_and_rate(axes[0][1:], runs, sns, label, log_time=True, linear_loss_ax=axes[0][0])
    _status_note(axes[0][0], runs)
    _legend_below(fig, handles, labels, 3)
    return fig


def _note_infinite(ax, text: str, x: float = 0.02, y: float = 0.98, ha: str = "left", va: str = "top") -> None:
    ax.text(x, y, text, transform=ax.transAxes, fontsize=7, va=va, ha=ha, color="#B2182B",
            bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="#B2182B", lw=0.6))


def fig_implicit_bias(paths, plt, sns):
    """Distance to the min-norm solution against width, log-log, with fit and Theorem 12 (Fig. 7)."""
    summaries = _summaries(paths)
    n_cases = sum(s.sizes["case"] for s in summaries)
    fig, axes = _panels(plt, 1, height=PANEL[1] + 0.3, legend_rows=3 * n_cases + 1)
    ax = axes[0][0]
    styles = iter(assign_styles([_case_key(s, c) for s in summaries for c in s["case"].values], sns))
    infinite = []
    for summary in summaries:
        dashes = METHOD_DASHES.get(_method(summary), "-")
        for case in summary["case"].values:
            style = next(styles)
            color, marker = style["color"], style["marker"]
            s = summary.sel(case=case)
            name = _summary_case_label(summary, case)
            widths = s["width"].values
            mean = s["distance_fro_mean"].values
            ok = np.isfinite(mean)
            err = np.vstack([mean - s["distance_fro_ci_low"].values, s["distance_fro_ci_high"].values - mean])
            slope, lo, hi = (float(s[k]) for k in ("slope_fro", "slope_fro_ci_low", "slope_fro_ci_high"))
            theory_exp = float(s["theory_exponent"])
            theory_text = f"{theory_exp:.3f}" if np.isfinite(theory_exp) else "none (α outside 1/4 < α ≤ 1/2)"
            ax.errorbar(widths[ok], mean[ok], yerr=np.nan_to_num(err[:, ok]), fmt=marker, color=color, ms=4,
                        capsize=2, label=f"{name}: {DISTANCE_FRO}, {_seeds_text(summary)}")
            if np.isfinite(slope):
                w = np.array([widths[ok].min(), widths[ok].max()], dtype=float)
                ax.plot(w, np.exp(float(s["intercept_fro"])) * w**slope, color=color, lw=1, ls=dashes,
                        label=f"fit: slope {slope:.3f} [{lo:.3f}, {hi:.3f}]; "
                              f"Theorem 12: {theory_text}")
            bound = s["theorem12_bound_mean"].values
            finite = np.isfinite(bound)
            if np.any(finite):
                ax.plot(widths[finite], bound[finite], color=color, ls=":", lw=1.2, marker=marker, mfc="none",
                        ms=3.5, label=f"Theorem 12 bound on {DISTANCE_OP}")
            inf_widths = widths[np.isinf(bound) & (s["n_converged"].values > 0)]  # NaN: no bound, not an overflow
            if inf_widths.size:
                infinite.append(f"{name}: Theorem 12 bound = ∞ (overflows) at h = "
                                + ", ".join(width_text(w) for w in inf_widths))
            bad = (s["n_runs"].values - s["n_converged"].values) > 0
            if np.any(bad):
                ax.plot(widths[bad], np.where(np.isfinite(mean[bad]), mean[bad], np.nanmin(mean)), "X",
                        color="#B2182B", ms=7, label="widths with diverged / unconverged runs (excluded)")
    if infinite:
        _note_infinite(ax, "\n".join(infinite))
    ax.set(yscale="log", ylabel="distance to the min-norm solution", title=f"Implicit bias ({_method(summaries[0])})")
    _width_axis(ax, np.concatenate([s["width"].values for s in summaries]))
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: not labels[k].startswith(tuple(  # data first
        f"{_summary_case_label(s, c)}: " for s in summaries for c in s["case"].values)))
    _legend_below(fig, [handles[k] for k in order], [labels[k] for k in order], 1)
    return fig


def _empirical_exponent(alpha: np.ndarray) -> np.ndarray:
    """The exponent law the simulations follow outside Theorem 12's range (docs/findings.md):
    ``-(2 alpha - 1/2)`` continued below 1/4, ``-alpha`` above 1/2. An empirical reading, drawn
    grey, dotted and labelled so; the theorem's line is drawn only on its range."""
    return -np.minimum(2 * alpha - 0.5, alpha)


def _experiment_texts(summaries) -> list[str]:
    """Experiments in a legend, in words: by their output dimension (``m = 3``), numbered where
    that does not tell them apart."""
    texts = [f"m = {json.loads(s.attrs.get('data', '{}')).get('m', '?')}" for s in summaries]
    if len(set(texts)) < len(texts):
        texts = [f"sweep {i + 1} ({text})" for i, text in enumerate(texts)]
    return texts


def fig_exponents(paths, plt, sns):
    """Fitted exponent of the distance in the width with 95% CI against alpha, Theorem 12's
    -(2 alpha - 1/2) on its range 1/4 < alpha <= 1/2; limit distance against width per alpha."""
    summaries = _summaries(paths)
    fig, axes = _panels(plt, 2, legend_rows=2 + 2 * len(summaries))
    ax = axes[0][0]
    alphas = np.concatenate([s["alpha"].values for s in summaries])
    low, high = float(np.nanmin(alphas)), float(np.nanmax(alphas))
    inside = np.linspace(*THEOREM12_RANGE, 101)[1:]
    inside = inside[(inside >= low - 0.05) & (inside <= high + 0.05)]
    ax.plot(inside, -(2 * inside - 0.5), color="k", lw=1.2, label=r"Theorem 12: $-(2\alpha - 1/2)$, "
            r"$1/4 < \alpha \leq 1/2$")
    if low <= THEOREM12_RANGE[0] or high > THEOREM12_RANGE[1]:
        grid = np.linspace(low, high, 200)
        ax.plot(grid, _empirical_exponent(grid), color=NEUTRAL[1], lw=1, ls=":",
                label=r"$-\min(2\alpha - 1/2,\ \alpha)$: our reading of the simulations, not a theorem")
    for ax_range in THEOREM12_RANGE:
        ax.axvline(ax_range, color="0.8", lw=0.8, zorder=0)
    shift = 0.006 * (high - low)
    for i, (summary, text) in enumerate(zip(summaries, _experiment_texts(summaries))):  # slopes: black, grey
        color = NEUTRAL[i % len(NEUTRAL)]
        order = np.argsort(summary["alpha"].values)
        alpha = summary["alpha"].values[order]
        marker = MARKERS[i % N_STYLES]
        for prefix, offset, filled, what in (("slope_null_fro", -shift, True, "limit distance"),
                                             ("slope_fro", shift, False, "end-point distance")):
            slope = summary[prefix].values[order]
            lo, hi = summary[f"{prefix}_ci_low"].values[order], summary[f"{prefix}_ci_high"].values[order]
            ok = np.isfinite(slope)
            ax.errorbar(alpha[ok] + offset, slope[ok], yerr=np.nan_to_num(np.vstack([slope - lo, hi - slope])[:, ok]),
                        fmt=marker, color=color, mfc=color if filled else "white", capsize=2, ms=4, lw=0.8,
                        label=f"{text}: slope of the {what} (95% CI)")
    ax.set(xlabel=r"initialization scale $\alpha$ (entries $N(0, h^{-2\alpha})$)",
           ylabel="fitted log-log slope in $h$", title="Exponent in the width")
    first = summaries[0]
    order = np.argsort(first["alpha"].values)
    cases = first["case"].values[order]
    for style, case in zip(assign_styles([_case_key(first, c) for c in cases], sns), cases):
        s = first.sel(case=case)
        mean = s["distance_null_fro_mean"].values
        ok = np.isfinite(mean) & (mean > 0)
        axes[0][1].plot(s["width"].values[ok], mean[ok], ls=METHOD_DASHES.get(_method(first), "-"), ms=3.5,
                        **style, label=_summary_case_label(first, case))
    seeds = _seeds_text(first).split(",")[0].replace("mean over ", "mean of ")
    m = json.loads(first.attrs.get("data", "{}")).get("m")
    axes[0][1].set(yscale="log", ylabel=rf"$\|\Phi_2 U_2 V^\top\|_F$ ({seeds})",
                   title="Limit distance" + (f", m = {m}" if m else ""))
    _width_axis(axes[0][1], first["width"].values)
    # beside the panel: ten alphas would cover the curves
    axes[0][1].legend(title="initialization scale", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      ncols=2 if len(cases) > 6 else 1)
    handles, labels = ax.get_legend_handles_labels()
    _legend_below(fig, handles, labels, 1)
    return fig


#: Line style of the i-th singular value in the incremental-learning figure.
MODE_DASHES = ("-", "--", ":", "-.")


def fig_incremental(paths, plt, sns):
    """Singular values of the end-to-end product ``U1 V^T`` over time at the largest width (first
    seed), one panel per case: from a small initialization the target's directions are learned
    one at a time, from alpha = 1/2 together."""
    entries = []  # (alpha, style key, label, run record) of every case at its largest width, first seed
    for path in paths:
        summary = _summaries([path])[0]
        for case in summary["case"].values:
            run = _open_run(summary, path, case=case, width=summary["width"].values.max(),
                            seed=summary["seed"].values[0])
            if run is not None:
                alpha = float(summary["alpha"].sel(case=case)) if "alpha" in summary.coords else np.nan
                entries.append((alpha, _case_key(summary, case), _summary_case_label(summary, case), run))
    if not entries:
        raise ValueError("the incremental-learning figure found no run at the largest width")
    entries.sort(key=lambda e: e[0] if np.isfinite(e[0]) else np.inf)  # by alpha
    ncols = min(2, len(entries))
    nrows = -(-len(entries) // ncols)
    fig, axes = _panels(plt, ncols, nrows, legend_rows=1)
    styles = assign_styles([e[1] for e in entries], sns)
    flat = axes.ravel()
    for ax, (_, _, label, run), style in zip(flat, entries, styles):
        t, singular = _positive_time(run, "product_singular_values")
        for i in range(singular.shape[1]):
            ax.plot(t, singular[:, i], color=style["color"], ls=MODE_DASHES[i % len(MODE_DASHES)], lw=1.2,
                    label=f"$\\sigma_{{{i + 1}}}(U_1 V^\\top)$")
        ax.set(xscale="log", xlabel=TIME_LABEL, ylabel=r"singular values of $U_1 V^\top$",
               title=f"{label}, h = {width_text(run.attrs['width'])}")
        _status_note(ax, [run])
    for ax in flat[len(entries):]:
        ax.set_visible(False)
    _legend_of_panels(fig, flat[:1], 4)
    return fig


def _series_labels(summaries) -> list[str]:
    """One label per summary: method and case in words (the experiment name only to tell
    apart two that would read the same)."""
    labels = []
    for summary in summaries:
        cases = [_summary_case_label(summary, c) for c in summary["case"].values]
        if len(set(cases)) < len(cases):  # still alike: the case names tell them apart
            cases = [f"{label} [{c}]" for label, c in zip(cases, summary["case"].values)]
        labels.append([f"{_method(summary)}, {c}" for c in cases])
    flat = [label for group in labels for label in group]
    if len(set(flat)) < len(flat):
        labels = [[f"{label} ({s.attrs.get('experiment', '')})" for label in group]
                  for s, group in zip(summaries, labels)]
    return labels


def _converged_runs(paths, columns: dict):
    """One row per converged run of the summaries; ``columns`` maps a label to a function of a
    summary's runs (the cube stacked to one ``run`` dimension) and the summary's case labels
    returning that column's values. Also returns the series names, in order."""
    import pandas as pd

    summaries = _summaries(paths)
    frames, names = [], []
    for summary, labels in zip(summaries, _series_labels(summaries)):
        by_case = dict(zip(summary["case"].values, labels))
        names += labels
        runs = summary.stack(run=("case", "width", "seed"))
        frame = pd.DataFrame({label: np.asarray(values(runs, by_case)) for label, values in columns.items()})
        frames.append(frame[runs["status"].values == "converged"])
    return pd.concat(frames, ignore_index=True), names


def _lineplot(sns, ax, data, x, y, hue, order, styles, **kwargs):
    """Mean with a seeded bootstrap 95% CI; ``styles`` maps each ``hue`` value to its colour,
    marker and dash pattern."""
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=hue, hue_order=order, style_order=order,
                 palette={name: styles[name]["color"] for name in order},
                 markers={name: styles[name]["marker"] for name in order},
                 dashes={name: styles[name]["dashes"] for name in order},
                 errorbar=("ci", 95), seed=0, err_style="band", ax=ax, **kwargs)


#: seaborn dash patterns of :data:`METHOD_DASHES`.
_SEABORN_DASHES = {"-": "", "--": (4, 2), "-.": (4, 1.5, 1, 1.5)}


def _series_styles(paths, sns) -> dict:
    """Colour, marker and dashes of every series of :func:`_converged_runs`: the case's colour
    and marker (:func:`style_index`), the method's line style."""
    summaries = _summaries(paths)
    keys, names, dashes = [], [], []
    for summary, labels in zip(summaries, _series_labels(summaries)):
        for case, name in zip(summary["case"].values, labels):
            keys.append(_case_key(summary, case))
            names.append(name)
            dashes.append(_SEABORN_DASHES[METHOD_DASHES.get(_method(summary), "-")])
    return {name: dict(style, dashes=dash) for name, style, dash in zip(names, assign_styles(keys, sns), dashes)}


def fig_tightness(paths, plt, sns):
    """Measured rate / Corollary 4 rate, and measured distance / Theorem 12 bound, against width."""
    rate, distance = "fitted rate / Corollary 4 rate $2\\lambda_r\\Delta(0)$", f"{DISTANCE_OP} / Theorem 12 bound"
    data, names = _converged_runs(paths, {
        "width": lambda s, _: s["width"].values,
        "series": lambda s, labels: [labels[c] for c in s["case"].values],
        rate: lambda s, _: s["ratio_rate_cor4"].values,
        "bound": lambda s, _: s["theorem12_bound"].values,
        distance: lambda s, _: s["ratio_distance_thm12"].values,
    })
    fig, axes = _panels(plt, 2, legend_rows=len(names))
    styles = _series_styles(paths, sns)
    _lineplot(sns, axes[0][0], data, "width", rate, "series", names, styles)
    axes[0][0].axhline(1.0, color="k", lw=1, ls="--")
    axes[0][0].text(0.98, 1.0, "ratio 1: bound attained", transform=axes[0][0].get_yaxis_transform(), ha="right",
                    va="bottom", fontsize=7)
    axes[0][0].set(ylabel="rate ratio (≥ 1 by Corollary 4)", title="Convergence rate against Corollary 4")
    finite = data[np.isfinite(data["bound"]) & np.isfinite(data[distance])]
    if len(finite):
        _lineplot(sns, axes[0][1], finite, "width", distance, "series", [n for n in names if n in set(finite["series"])],
                  styles)
    infinite = data[np.isinf(data["bound"])]
    outside = sorted(set(data.loc[np.isnan(data["bound"]), "series"]), key=names.index)
    notes = []
    if len(infinite):
        notes.append("Theorem 12 bound = ∞ (overflows) for\n" + "\n".join(
            f"{series}, h = {', '.join(width_text(w) for w in sorted(set(group['width'])))}"
            for series, group in infinite.groupby("series", sort=False)))
    if outside:  # NaN: alpha outside Theorem 12's range, where it gives no bound
        notes.append("no Theorem 12 bound (α outside 1/4 < α ≤ 1/2) for\n" + "\n".join(outside))
    if notes:
        _note_infinite(axes[0][1], "\n".join(notes))
    axes[0][1].set(yscale="log", ylabel="distance ratio (≤ 1 by Theorem 12)", title="Distance against Theorem 12")
    for ax in axes[0]:
        _width_axis(ax, data["width"])
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    _legend_below(fig, handles, labels, 2)
    return fig


def fig_conditioning(paths, plt, sns):
    """Rate and distance against the condition number of X, per width, with the bounds."""
    data, _ = _converged_runs(paths, {
        "kappa": lambda s, _: np.round(np.sqrt(s["lam_1"].values / s["lam_r"].values), 6),
        "width": lambda s, _: s["width"].values,
        "fitted rate": lambda s, _: s["fitted_rate"].values,
        "Corollary 4 rate": lambda s, _: s["rate_cor4"].values,
        "Theorem 3 rate": lambda s, _: s["rate_thm3_0"].values,
        f"measured {DISTANCE_FRO}": lambda s, _: s["final_distance_fro"].values,
        f"Theorem 12 bound on {DISTANCE_OP}": lambda s, _: s["theorem12_bound"].values,
        "solver": lambda s, _: s["solver"].values if "solver" in s else np.full(s.sizes["run"], ""),
    })
    bound = f"Theorem 12 bound on {DISTANCE_OP}"
    widths = sorted(set(data["width"]))
    data["width"] = data["width"].map(lambda w: f"h = {width_text(w)}")
    hues = [f"h = {width_text(w)}" for w in widths]
    width_colors = [style["color"] for style in assign_styles([style_index(width=w) for w in widths], sns)]
    keys = ["kappa", "width"]
    fig, axes = _panels(plt, 2, legend_rows=2)
    for ax, quantities, value in ((axes[0][0], ["fitted rate", "Corollary 4 rate", "Theorem 3 rate"], "rate"),
                                  (axes[0][1], [f"measured {DISTANCE_FRO}", bound], "distance")):
        long = data.melt(id_vars=keys, value_vars=quantities, var_name="quantity", value_name=value)
        long = long[np.isfinite(long[value])]
        sns.lineplot(data=long, x="kappa", y=value, hue="width", hue_order=hues, style="quantity",
                     style_order=quantities, palette=dict(zip(hues, width_colors)),
                     markers=dict(zip(quantities, MARKERS)), dashes=dict(zip(quantities, ["", (4, 2), (1, 1.5)])),
                     errorbar=("ci", 95), seed=0, ax=ax)
    infinite = data[np.isinf(data[bound])]
    if len(infinite):
        _note_infinite(axes[0][1], "Theorem 12 bound = ∞\n(overflows) at κ = "
                       + ", ".join(width_text(k) for k in sorted(set(infinite["kappa"]))) + ":\nnot drawn",
                       x=0.97, y=0.55, ha="right", va="center")
        for kappa in sorted(set(infinite["kappa"])):
            axes[0][1].annotate("bound = ∞", xy=(kappa, 1.0), xycoords=("data", "axes fraction"),
                                xytext=(0, -22), textcoords="offset points", ha="center", fontsize=7,
                                color="#B2182B", arrowprops=dict(arrowstyle="->", color="#B2182B", lw=0.8))
    implicit = sorted(set(data.loc[data["solver"] == "bdf", "kappa"]))
    for ax in axes[0]:
        ax.set(xscale="log", yscale="log", xlabel=r"condition number $\kappa = s_1 / s_r$ of $X$")
        if implicit:  # where the runs were integrated with BDF instead of DOP853 (solver: auto)
            ax.axvspan(implicit[0] / 1.5, max(data["kappa"]) * 1.5, color="0.92", zorder=0, lw=0)
    axes[0][0].set(ylabel=f"rate ({RATE_UNITS})", title="Convergence rate and its lower bounds")
    axes[0][1].set(ylabel="distance to the min-norm solution", title="Distance to the min-norm solution")
    handles, labels = [], []
    for ax in axes[0]:
        h, l = ax.get_legend_handles_labels()
        for handle, label in zip(h, l):
            if label not in labels and label not in ("width", "quantity"):
                handles.append(handle)
                labels.append(label)
        ax.get_legend().remove()
    if implicit:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.92"))
        labels.append("integrated with BDF (solver auto)")
    _legend_below(fig, handles, labels, 3)
    return fig


def _case_values(summary, name: str) -> np.ndarray:
    """A case parameter (``batch_size``, ``step``) per case, from the coordinate or the shared
    settings of the summary (a value every case has)."""
    import json

    if name in summary.coords:
        return np.asarray(summary[name].values, dtype=float)
    shared = json.loads(summary.attrs.get("simulation", "{}"))
    return np.full(summary.sizes["case"], float(shared.get(name, np.nan)))


def fig_sgd_batch(paths, plt, sns):
    """Mini-batch SGD: distance to the min-norm solution against width per batch size (with the
    fitted power laws), the distance relative to the full batch, and the fitted exponents."""
    summaries = _summaries(paths)
    n_cases = sum(summary.sizes["case"] for summary in summaries)
    fig, axes = _panels(plt, 3, legend_rows=(n_cases + 5) // 2)
    axes = axes[0]
    for summary in summaries:
        known = np.isfinite(_case_values(summary, "batch_size"))
        # a summary without batch sizes draws too, against the case index
        b = np.where(known, _case_values(summary, "batch_size"), np.arange(1, known.size + 1))
        order = np.argsort(b)
        cases = summary["case"].values[order]
        palette = [style["color"] for style in assign_styles([None] * len(cases), sns)]
        full = summary.sel(case=cases[-1])  # the largest batch: the reference of the middle panel
        for color, case in zip(palette, cases):
            s = summary.sel(case=case)
            widths, mean = s["width"].values, s["distance_fro_mean"].values
            ok = np.isfinite(mean)
            err = np.vstack([mean - s["distance_fro_ci_low"].values, s["distance_fro_ci_high"].values - mean])
            slope, lo, hi = (float(s[k]) for k in ("slope_fro", "slope_fro_ci_low", "slope_fro_ci_high"))
            index = list(summary["case"].values).index(case)
            label = f"b = {b[index]:g}" if known[index] else str(case)
            shift = 1.06 ** (list(cases).index(case) - (len(cases) - 1) / 2)  # side by side, not on top
            axes[0].errorbar(widths[ok] * shift, mean[ok], yerr=np.nan_to_num(err[:, ok]), fmt="o", color=color,
                             ms=4, capsize=2, label=f"{label}: slope {slope:.3f} [{lo:.3f}, {hi:.3f}]")
            if np.isfinite(slope):
                w = np.array([widths[ok].min(), widths[ok].max()], dtype=float)
                axes[0].plot(w, np.exp(float(s["intercept_fro"])) * w**slope, color=color, lw=1)
            bad = (s["n_runs"].values - s["n_converged"].values) > 0
            if np.any(bad):
                axes[0].plot(widths[bad], np.where(ok[bad], mean[bad], np.nanmin(mean)), "X", color="crimson", ms=7,
                             label="widths with diverged / unconverged runs (excluded)")
            axes[1].plot(widths[ok], mean[ok] / full["distance_fro_mean"].values[ok], "o-", color=color, ms=4)
        theory_exp = float(summary["theory_exponent"].values[0])
        for prefix, shift, fmt, text in (("slope_fro", 0.97, "o", "all widths"),
                                         ("slope_upper_fro", 1.03, "s",
                                          f"widths h ≥ {width_text(summary['upper_min_width'].values.min())}")):
            slope = summary[prefix].values[order]
            low, high = summary[f"{prefix}_ci_low"].values[order], summary[f"{prefix}_ci_high"].values[order]
            axes[2].errorbar(b[order] * shift, slope, yerr=np.vstack([slope - low, high - slope]), fmt=fmt, capsize=3,
                             ms=4, color=NEUTRAL[0] if prefix == "slope_fro" else NEUTRAL[1],
                             label=f"fitted slope, {text} (95% CI)")
        if np.isfinite(theory_exp):  # NaN: alpha outside Theorem 12's range
            axes[2].axhline(theory_exp, color="k", ls="--", lw=1, label=f"Theorem 12: {theory_exp:.2f}")
    seeds = _seeds_text(summaries[0])
    axes[0].set(yscale="log", ylabel=f"{DISTANCE_FRO} ({seeds})", title="Distance against width")
    axes[1].set(ylabel=f"{DISTANCE_FRO} / same at the largest b", title="Relative to the full batch")
    for ax in axes[:2]:
        _width_axis(ax, np.concatenate([s["width"].values for s in summaries]))
    axes[2].set(xscale="log", xlabel="batch size $b$", ylabel="fitted log-log slope in $h$",
                title="Fitted exponent against b")
    _legend_of_panels(fig, axes, 2)
    return fig


def fig_gd_step(paths, plt, sns):
    """Gradient descent: final distance and convergence time against the step, one curve per
    width; steps where runs diverged are marked; vertical lines at 1/lam_1 and 2/lam_1."""
    summaries = _summaries(paths)
    n_widths = sum(summary.sizes["width"] for summary in summaries)
    fig, axes = _panels(plt, 3, legend_rows=2 * n_widths + 1)
    axes = axes[0]
    for summary in summaries:
        steps = _case_values(summary, "step")
        order = np.argsort(steps)
        cases, steps = summary["case"].values[order], steps[order]
        palette = [style["color"] for style in
                   assign_styles([style_index(width=w) for w in summary["width"].values], sns)]
        converged = summary["status"] == "converged"
        time_last = summary["time_last"].where(converged).mean("seed").sel(case=cases)
        iterations = summary["n_evaluations"].where(converged).mean("seed").sel(case=cases)
        for color, width in zip(palette, summary["width"].values):
            s = summary.sel(case=cases, width=width)
            mean = s["distance_fro_mean"].values
            ok = np.isfinite(mean)
            err = np.vstack([mean - s["distance_fro_ci_low"].values, s["distance_fro_ci_high"].values - mean])
            label = f"h = {width_text(width)}"
            axes[0].errorbar(steps[ok], mean[ok], yerr=np.nan_to_num(err[:, ok]), fmt="o-", color=color, ms=4,
                             capsize=2, label=label)
            axes[1].plot(steps[ok], mean[ok] / mean[ok][0], "o-", color=color, ms=4)
            axes[2].plot(steps, time_last.sel(width=width).values, "o-", color=color, ms=4, label=f"{label}: flow time")
            axes[2].plot(steps, iterations.sel(width=width).values, ":",
                         color=color, lw=1, label=f"{label}: iterations")
            bad = s["n_diverged"].values > 0
            if np.any(bad):
                axes[1].plot(steps[bad], np.ones(bad.sum()), "X", color=color, mec="crimson", ms=8,
                             label=f"{label}: runs diverged at steps {', '.join(f'{v:g}' for v in steps[bad])}")
        lam_1 = float(np.nanmedian(summary["lam_1"].values))
        for ax in axes:
            for value, style, label in ((1 / lam_1, "--", r"$1/\lambda_1$ ($= 2/\lambda_0$ at $G_0 = I$)"),
                                        (2 / lam_1, ":", r"$2/\lambda_1$")):
                ax.axvline(value, color="grey", ls=style, lw=1, label=label)
    seeds = _seeds_text(summaries[0])
    axes[0].set(xscale="log", yscale="log", xlabel=r"step $\eta$ (on 1/2 ||.||$^2$)",
                ylabel=f"{DISTANCE_FRO} ({seeds})", title="Distance against the step")
    axes[1].set(xscale="log", xlabel=r"step $\eta$", ylabel=rf"{DISTANCE_FRO} / same at the smallest $\eta$",
                title="Relative to the smallest step")
    axes[2].set(xscale="log", yscale="log", xlabel=r"step $\eta$",
                ylabel=f"flow time $\\eta k$, iterations $k$ ({seeds.split(',')[0]})",
                title="Cost of convergence")
    _legend_of_panels(fig, axes, 2)
    return fig


def _letter_panels(fig) -> None:
    """Panels of a figure with several get letters before their titles: (a), (b), ..."""
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    if len(panels) > 1:
        for letter, ax in zip("abcdefghij", panels):
            ax.set_title(f"({letter}) {ax.get_title()}".rstrip())


def build(kind: str, paths, plt, sns):
    """Figure ``kind`` from ``paths``, its panels lettered (what :func:`draw` saves)."""
    fig = _DRAW[kind]([Path(p) for p in paths], plt, sns)
    _letter_panels(fig)
    return fig


_DRAW = {
    "spectrum": fig_spectrum,
    "convergence": fig_convergence,
    "imbalanced": fig_imbalanced,
    "implicit_bias": fig_implicit_bias,
    "exponents": fig_exponents,
    "tightness": fig_tightness,
    "conditioning": fig_conditioning,
    "sgd_batch": fig_sgd_batch,
    "gd_step": fig_gd_step,
    "incremental": fig_incremental,
}


def data_caption(description: dict) -> str:
    """Which data a summary shows, from the description its runs' dataset recorded:
    ``digits (standardize): N = 1797, n = 64, m = 10, kappa = lam_1/lam_r = 146``."""
    steps = [key for key in ("one_hot", "center", "standardize") if description.get(key)]
    if description.get("scale", 1.0) != 1.0:
        steps.append(f"scale {description['scale']:g}")
    if description.get("subsample"):
        steps.append(f"subsample {description['subsample']}")
    name = str(description.get("name", "data")) + (f" ({', '.join(steps)})" if steps else "")
    sizes = ", ".join(f"{key} = {description[key]}" for key in ("N", "n", "m") if key in description)
    kappa = ""
    if "lam_ratio" in description:
        ratio = width_text(float(f"{description['lam_ratio']:.3g}"))
        kappa = f", $\\kappa = \\lambda_1/\\lambda_r$ = {ratio}"
    return f"{name}: {sizes}{kappa}"


def data_captions(inputs) -> list[str]:
    """One caption per distinct dataset of the summaries ``inputs`` (none for other inputs)."""
    import xarray as xr

    captions = []
    for path in inputs:
        try:
            with xr.open_dataset(path) as ds:
                description = ds.attrs.get("data")
        except (OSError, ValueError):
            continue
        if description:
            caption = data_caption(json.loads(description))
            if caption not in captions:
                captions.append(caption)
    return captions


def draw(kind: str, inputs, *, png, pdf, title: str | None = None) -> None:
    """Draw figure ``kind`` from ``inputs`` (NetCDF files) into ``png`` and ``pdf`` (atomically)."""
    if kind not in _DRAW:
        raise ValueError(f"unknown figure {kind!r}; allowed: {', '.join(sorted(_DRAW))}")
    plt, sns = _setup()
    fig = build(kind, inputs, plt, sns)
    captions = data_captions(inputs)
    if captions:  # wrapped to the figure's width (~0.55 em per character)
        import textwrap

        size = FONT_SIZES["legend.fontsize"]
        width = max(30, int(fig.get_figwidth() * 72 / (0.55 * size)))
        captions = [textwrap.fill(c, width, subsequent_indent="  ") for c in captions]
    if title or captions:
        fig.suptitle("\n".join(filter(None, [title, *captions])), fontsize=FONT_SIZES["figure.titlesize"] if title
                     else FONT_SIZES["legend.fontsize"])
    for path in (Path(png), Path(pdf)):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=DPI)
        tmp.replace(path)
    plt.close(fig)
