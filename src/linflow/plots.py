"""The paper's figures and the extensions', drawn with seaborn from NetCDF files only.

Plots never recompute physics: every number drawn is a variable of a summary cube
(:func:`linflow.open_sweep`) or of the run records it lists. ``draw(kind, inputs, png=...,
pdf=...)`` is the single entry point (``inputs``: summary.nc files); matplotlib and seaborn are
imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import record

#: Figure kinds and the inputs they read.
FIGURES = {
    "spectrum": "run records listed by summary.nc (Fig. 2 left / Fig. 4: imbalance spectrum)",
    "convergence": "run records listed by summary.nc (Fig. 5: loss and rate per width, with bounds)",
    "imbalanced": "run records listed by summary.nc (Fig. 3 / Fig. 6: imbalanced and balanced initializations)",
    "implicit_bias": "summary.nc (Fig. 7: distance to the min-norm solution against width)",
    "exponents": "summary.nc (fitted against predicted Theorem 12 exponent across alpha)",
    "tightness": "summary.nc files (measured rate / Corollary 4 rate, distance / Theorem 12 bound)",
    "conditioning": "summary.nc files (rate and distance against the condition number)",
    "sgd_batch": "summary.nc (mini-batch SGD: distance against width per batch size, fitted exponents)",
    "gd_step": "summary.nc (gradient-descent step: distance and convergence time against the step, per width)",
}

STATUS_MARKERS = {"diverged": "X", "not_converged": "v", "failed": "s"}


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    return plt, sns


def _summaries(paths) -> list:
    return [record.open_netcdf(p, ("distance_fro_mean", "slope_fro", "file")) for p in paths]


def _runs(paths) -> list:
    """The run records of the first seed of every (case, width) of the summaries ``paths``."""
    runs = []
    for path in paths:
        summary = _summaries([path])[0]
        seed = summary["seed"].values[0]
        for case in summary["case"].values:
            for width in summary["width"].values:
                name = str(summary["file"].sel(case=case, width=width, seed=seed).item())
                if name:
                    runs.append(record.open_run(Path(path).parent / name))
    return sorted(runs, key=lambda ds: (str(ds.attrs.get("case", "")), int(ds.attrs["width"]), int(ds.attrs.get("seed", 0))))


def _label(ds) -> str:
    return f"h = {int(ds.attrs['width'])}"


def _status_note(ax, runs) -> None:
    bad = [f"{ds.attrs.get('case', '')} h={ds.attrs['width']} s={ds.attrs.get('seed')}: {ds['status'].item()}"
           for ds in runs if ds["status"].item() != "converged"]
    if bad:
        ax.text(0.01, 0.01, "not converged: " + "; ".join(bad[:4]) + (" ..." if len(bad) > 4 else ""),
                transform=ax.transAxes, fontsize=6, color="crimson", va="bottom")


def fig_spectrum(paths, plt, sns):
    """Nonzero eigenvalues of D scaled by 1/(m h), with Delta_+, Delta_-, Delta_ (Fig. 2 left / 4)."""
    runs = _runs(paths)
    widths = sorted({int(ds.attrs["width"]) for ds in runs})
    chosen = [next(ds for ds in runs if int(ds.attrs["width"]) == w) for w in (widths[0], widths[-1])]
    if widths[0] == widths[-1]:
        chosen = chosen[:1]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], chosen):
        scale = 1.0 / (int(ds.attrs["m"]) * int(ds.attrs["width"]))
        eig = np.sort(ds["imbalance_eigenvalues"].values)[::-1] * scale
        eig = eig[np.abs(eig) > 1e-12 * np.abs(eig).max()]
        sns.scatterplot(x=np.arange(1, eig.size + 1), y=eig, ax=ax, s=18, label="eigenvalues of D / (m h)")
        for name, label, style in (("delta_plus", r"$\Delta_+$", "--"), ("delta_minus", r"$\Delta_-$", ":"),
                                   ("delta_under", r"$\Delta$", "-")):
            ax.axhline(float(ds[name]) * scale, ls=style, color="k", lw=1, label=f"{label} / (m h)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="index", ylabel="eigenvalue / (m h)", title=_label(ds))
        ax.legend(fontsize=6)
    return fig


def _loss_and_rate(axes, runs, sns, hue_label, linear_loss_ax=None):
    palette = sns.color_palette(n_colors=max(len(runs), 1))
    for color, ds in zip(palette, runs):
        x = ds["time"].values
        label = hue_label(ds)
        axes[0].semilogy(x, ds["excess_loss"], color=color, label=label)
        axes[0].semilogy(x, ds["loss_bound"], color=color, ls="--", lw=0.8)
        if linear_loss_ax is not None:
            linear_loss_ax.plot(x, ds["excess_loss"], color=color, label=label)
        axes[1].plot(x, ds["inst_rate"], color=color, label=label)
        axes[1].plot(x, ds["rate_bound"], color=color, ls="--", lw=0.8)
    axes[0].set(xlabel="flow time t", ylabel="excess loss (solid), Theorem 3 bound (dashed)")
    axes[1].set(xlabel="flow time t", ylabel="rate -dL/dt / L (solid), Prop. 1 bound (dashed)")
    axes[1].set_ylim(bottom=0)
    for ax in axes:
        ax.legend(fontsize=6)


def fig_convergence(paths, plt, sns):
    """Loss with the Theorem 3 bound, rate with the Proposition 1 bound, per width (Fig. 5)."""
    runs = _runs(paths)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    _loss_and_rate(axes, runs, sns, _label)
    _status_note(axes[0], runs)
    return fig


def fig_imbalanced(paths, plt, sns):
    """Imbalanced initializations and the balanced one: loss (linear, log) and rate (Fig. 3 / 6)."""
    runs = _runs(paths)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    _loss_and_rate(axes[1:], runs, sns, lambda ds: f"{ds.attrs.get('case')}: Delta = {float(ds['delta_under']):.3g}",
                   linear_loss_ax=axes[0])
    axes[0].set(xlabel="flow time t", ylabel="excess loss")
    _status_note(axes[0], runs)
    return fig


def fig_implicit_bias(paths, plt, sns):
    """Distance to the min-norm solution against width, log-log, with fit and Theorem 12 (Fig. 7)."""
    fig, ax = plt.subplots(figsize=(5.4, 4.0))
    for summary in _summaries(paths):
        palette = sns.color_palette(n_colors=summary.sizes["case"])
        for color, case in zip(palette, summary["case"].values):
            s = summary.sel(case=case)
            widths = s["width"].values
            mean = s["distance_fro_mean"].values
            ok = np.isfinite(mean)
            err = np.vstack([mean - s["distance_fro_ci_low"].values, s["distance_fro_ci_high"].values - mean])
            slope, lo, hi = (float(s[k]) for k in ("slope_fro", "slope_fro_ci_low", "slope_fro_ci_high"))
            label = f"{case}: slope {slope:.3f} [{lo:.3f}, {hi:.3f}], theory {float(s['theory_exponent']):.3f}"
            ax.errorbar(widths[ok], mean[ok], yerr=np.nan_to_num(err[:, ok]), fmt="o", color=color, ms=4,
                        capsize=2, label=label)
            if np.isfinite(slope):
                w = np.array([widths[ok].min(), widths[ok].max()], dtype=float)
                ax.plot(w, np.exp(float(s["intercept_fro"])) * w**slope, color=color, lw=1)
            bound = s["theorem12_bound_mean"].values
            if np.any(np.isfinite(bound)):
                ax.plot(widths, bound, color=color, ls=":", lw=1, label=f"{case}: Theorem 12 bound (operator norm)")
            bad = (s["n_runs"].values - s["n_converged"].values) > 0
            if np.any(bad):
                ax.plot(widths[bad], np.where(np.isfinite(mean[bad]), mean[bad], np.nanmin(mean)), "X",
                        color="crimson", ms=7, label="widths with diverged / unconverged runs (excluded)")
    ax.set(xscale="log", yscale="log", xlabel="width h", ylabel=r"$\|UV^T - \hat\Theta\|_F$ (mean, 95% CI)")
    ax.legend(fontsize=6)
    return fig


def fig_exponents(paths, plt, sns):
    """Fitted exponent with 95% CI against Theorem 12's -(2 alpha - 1/2); distance curves per alpha."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for summary in _summaries(paths):
        alpha = summary["alpha"].values
        order = np.argsort(alpha)
        theory_exp = summary["theory_exponent"].values[order]
        for prefix, shift, fmt, label in (
            ("slope_fro", -0.004, "o", "fitted slope, all widths (95% CI)"),
            ("slope_upper_fro", 0.004, "s",
             f"fitted slope, widths >= {int(summary['upper_min_width'].values.min())} (95% CI)"),
        ):
            slope = summary[prefix].values[order]
            lo, hi = summary[f"{prefix}_ci_low"].values[order], summary[f"{prefix}_ci_high"].values[order]
            axes[0].errorbar(theory_exp + shift, slope, yerr=np.vstack([slope - lo, hi - slope]), fmt=fmt,
                             capsize=3, ms=4, label=label)
        line = np.array([np.nanmin(theory_exp), np.nanmax(theory_exp)])
        axes[0].plot(line, line, color="k", lw=1, ls="--", label="identity")
        palette = sns.color_palette("viridis", n_colors=summary.sizes["case"])
        for color, case in zip(palette, summary["case"].values[np.argsort(summary["alpha"].values)]):
            s = summary.sel(case=case)
            ok = np.isfinite(s["distance_fro_mean"].values)
            axes[1].plot(s["width"].values[ok], s["distance_fro_mean"].values[ok], "o-", ms=3, color=color,
                         label=f"alpha = {float(s['alpha']):.2f}")
    axes[0].set(xlabel=r"theory exponent $-(2\alpha - 1/2)$", ylabel="fitted log-log slope")
    axes[1].set(xscale="log", yscale="log", xlabel="width h", ylabel=r"$\|UV^T - \hat\Theta\|_F$ (mean over seeds)")
    for ax in axes:
        ax.legend(fontsize=6)
    return fig


def _converged_runs(paths, columns: dict):
    """One row per converged run of the summaries; ``columns`` maps a label to a function of a
    summary's runs (the cube stacked to one ``run`` dimension) returning that column's values."""
    import pandas as pd

    frames = []
    for summary in _summaries(paths):
        runs = summary.stack(run=("case", "width", "seed"))
        frame = pd.DataFrame({label: np.asarray(values(runs)) for label, values in columns.items()})
        frames.append(frame[runs["status"].values == "converged"])
    return pd.concat(frames, ignore_index=True)


def fig_tightness(paths, plt, sns):
    """Measured rate / Corollary 4 rate, and measured distance / Theorem 12 bound, against width."""
    data = _converged_runs(paths, {
        "width": lambda s: s["width"].values,
        "case": lambda s: [f"{s.attrs.get('experiment', '')}:{c}" for c in s["case"].values],
        "rate ratio (fitted / Cor. 4)": lambda s: s["ratio_rate_cor4"].values,
        "distance ratio (measured / Thm. 12)": lambda s: s["ratio_distance_thm12"].values,
    })
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    sns.lineplot(data=data, x="width", y="rate ratio (fitted / Cor. 4)", hue="case", marker="o",
                 errorbar=("ci", 95), seed=0, ax=axes[0])
    axes[0].axhline(1.0, color="k", lw=1, ls="--")
    axes[0].set(xscale="log")
    finite = data[np.isfinite(data["distance ratio (measured / Thm. 12)"])]
    if len(finite):
        sns.lineplot(data=finite, x="width", y="distance ratio (measured / Thm. 12)", hue="case", marker="o",
                     errorbar=("ci", 95), seed=0, ax=axes[1])
    axes[1].set(xscale="log", yscale="log")
    for ax in axes:
        ax.legend(fontsize=6)
    return fig


def fig_conditioning(paths, plt, sns):
    """Rate and distance against the condition number of X, per width, with the bounds."""
    data = _converged_runs(paths, {
        "condition number": lambda s: np.round(np.sqrt(s["lam_1"].values / s["lam_r"].values), 6),
        "width": lambda s: s["width"].values,
        "fitted rate": lambda s: s["fitted_rate"].values,
        "Cor. 4 rate": lambda s: s["rate_cor4"].values,
        "Thm. 3 rate": lambda s: s["rate_thm3_0"].values,
        "distance (Frobenius)": lambda s: s["final_distance_fro"].values,
        "Thm. 12 bound": lambda s: s["theorem12_bound"].values,
    })
    data["width"] = data["width"].map(lambda w: f"h = {w}")
    keys = ["condition number", "width"]
    long_rate = data.melt(id_vars=keys, value_vars=["fitted rate", "Cor. 4 rate", "Thm. 3 rate"],
                          var_name="quantity", value_name="rate")
    long_dist = data.melt(id_vars=keys, value_vars=["distance (Frobenius)", "Thm. 12 bound"],
                          var_name="quantity", value_name="distance")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sns.lineplot(data=long_rate, x="condition number", y="rate", hue="width", style="quantity", marker="o",
                 errorbar=("ci", 95), seed=0, ax=axes[0])
    sns.lineplot(data=long_dist, x="condition number", y="distance", hue="width", style="quantity", marker="o",
                 errorbar=("ci", 95), seed=0, ax=axes[1])
    for ax in axes:
        ax.set(xscale="log", yscale="log")
        ax.legend(fontsize=6)
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
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0))
    for summary in _summaries(paths):
        known = np.isfinite(_case_values(summary, "batch_size"))
        # a summary without batch sizes draws too, against the case index
        b = np.where(known, _case_values(summary, "batch_size"), np.arange(1, known.size + 1))
        order = np.argsort(b)
        cases = summary["case"].values[order]
        palette = sns.color_palette(n_colors=len(cases))
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
            axes[1].plot(widths[ok], mean[ok] / full["distance_fro_mean"].values[ok], "o-", color=color, ms=4,
                         label=label)
        theory_exp = float(summary["theory_exponent"].values[0])
        for prefix, shift, fmt, text in (("slope_fro", 0.97, "o", "all widths"),
                                         ("slope_upper_fro", 1.03, "s",
                                          f"widths >= {int(summary['upper_min_width'].values.min())}")):
            slope = summary[prefix].values[order]
            low, high = summary[f"{prefix}_ci_low"].values[order], summary[f"{prefix}_ci_high"].values[order]
            axes[2].errorbar(b[order] * shift, slope, yerr=np.vstack([slope - low, high - slope]), fmt=fmt, capsize=3,
                             ms=4, label=f"fitted slope, {text} (95% CI)")
        axes[2].axhline(theory_exp, color="k", ls="--", lw=1, label=f"Theorem 12: {theory_exp:.2f}")
    axes[0].set(xscale="log", yscale="log", xlabel="width h", ylabel=r"$\|UV^T - \hat\Theta\|_F$ (mean, 95% CI)")
    axes[1].set(xscale="log", xlabel="width h", ylabel="mean distance / mean distance at the largest batch")
    axes[2].set(xscale="log", xlabel="batch size b", ylabel="fitted log-log slope in the width")
    for ax in axes:
        ax.legend(fontsize=6)
    return fig


def fig_gd_step(paths, plt, sns):
    """Gradient descent: final distance and convergence time against the step, one curve per
    width; steps where runs diverged are marked; vertical lines at 1/lam_1 and 2/lam_1."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0))
    for summary in _summaries(paths):
        steps = _case_values(summary, "step")
        order = np.argsort(steps)
        cases, steps = summary["case"].values[order], steps[order]
        palette = sns.color_palette(n_colors=summary.sizes["width"])
        converged = summary["status"] == "converged"
        time_last = summary["time_last"].where(converged).mean("seed").sel(case=cases)
        iterations = summary["n_evaluations"].where(converged).mean("seed").sel(case=cases)
        for color, width in zip(palette, summary["width"].values):
            s = summary.sel(case=cases, width=width)
            mean = s["distance_fro_mean"].values
            ok = np.isfinite(mean)
            err = np.vstack([mean - s["distance_fro_ci_low"].values, s["distance_fro_ci_high"].values - mean])
            label = f"h = {int(width)}"
            axes[0].errorbar(steps[ok], mean[ok], yerr=np.nan_to_num(err[:, ok]), fmt="o-", color=color, ms=4,
                             capsize=2, label=label)
            axes[1].plot(steps[ok], mean[ok] / mean[ok][0], "o-", color=color, ms=4, label=label)
            axes[2].plot(steps, time_last.sel(width=width).values, "o-", color=color, ms=4, label=f"{label}: flow time")
            axes[2].plot(steps, iterations.sel(width=width).values, ":",
                         color=color, lw=1, label=f"{label}: iterations")
            bad = s["n_diverged"].values > 0
            if np.any(bad):
                axes[1].plot(steps[bad], np.ones(bad.sum()), "X", color=color, mec="crimson", ms=8,
                             label=f"{label}: runs diverged at steps {', '.join(f'{v:g}' for v in steps[bad])}")
        lam_1 = float(np.nanmedian(summary["lam_1"].values))
        for ax in axes:
            for value, style in ((1 / lam_1, "--"), (2 / lam_1, ":")):
                ax.axvline(value, color="grey", ls=style, lw=1)
    axes[0].set(xscale="log", yscale="log", xlabel=r"step $\eta$ (on 1/2 ||.||$^2$)",
                ylabel=r"$\|UV^T - \hat\Theta\|_F$ (mean, 95% CI)")
    axes[1].set(xscale="log", xlabel=r"step $\eta$", ylabel="distance / distance at the smallest step")
    axes[2].set(xscale="log", yscale="log", xlabel=r"step $\eta$",
                ylabel="at convergence (mean over seeds)")
    axes[0].set_title("dashed: 1/lam_1 (= 2/lam_0 at G0 = I), dotted: 2/lam_1", fontsize=7)
    for ax in axes:
        ax.legend(fontsize=6)
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
}


def draw(kind: str, inputs, *, png, pdf, title: str | None = None) -> None:
    """Draw figure ``kind`` from ``inputs`` (NetCDF files) into ``png`` and ``pdf`` (atomically)."""
    if kind not in _DRAW:
        raise ValueError(f"unknown figure {kind!r}; allowed: {', '.join(sorted(_DRAW))}")
    plt, sns = _setup()
    fig = _DRAW[kind]([Path(p) for p in inputs], plt, sns)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    for path in (Path(png), Path(pdf)):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
    plt.close(fig)
