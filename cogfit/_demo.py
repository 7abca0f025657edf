"""``cogfit demo``: the main job on an embedded default (simulated) or a named real data set.

The embedded default, ``cogfit/data/demo_cpt.csv``, was simulated by cogfit's own simulator
(:func:`make_demo_table`, seed 2026) from two populations with known, different parameters; its
``source`` column says so. Regenerate it with ``python -m cogfit._demo``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DEMO_CSV = Path(__file__).parent / "data" / "demo_cpt.csv"
DEMO_MODEL = "cpt_linear"
DEMO_SEED = 2026
# Known population parameters (natural scale, median subject) and subject spread (log/logit sd).
DEMO_TRUTH = {
    "human (simulated)": {"alpha": 0.85, "lam": 2.0, "tau": 0.25},
    "llm (simulated)": {"alpha": 0.95, "lam": 1.2, "tau": 0.6},
}
DEMO_SPREAD = 0.2
# A real data set's demo fits the first few subjects of each population unless told otherwise
# (``cogfit demo --subjects``): the whole of spektor, 282 subjects, takes hours on a laptop.
DEFAULT_SUBJECTS = 10
# Named real data sets and the model the demo fits to each.
REAL = {
    # ref: the reference stake (median |outcome| of spektor), tau then does not trade off against alpha
    "psych201/spektor2024lossaversion": dict(model="cpt_linear_bias", by_condition=(), fix={"ref": 16.0}),
    "psych201/dezfouli2019": dict(model="bandit_dual_rep_blocks", by_condition=()),
    "psych201/guenther2020LDT": dict(model="ddm_lapse", by_condition=("v",)),
}


def make_demo_table(n_per_population: int = 12, n_trials: int = 80, seed: int = DEMO_SEED) -> pd.DataFrame:
    """Simulate the embedded demo data (deterministic for a given seed)."""
    import cogfit

    model = cogfit.models.get(DEMO_MODEL)
    pops = list(DEMO_TRUTH)
    n = n_per_population * len(pops)
    design = cogfit.random_design(model, n_subjects=n, n_trials=n_trials, seed=seed, populations=pops)
    prob_cols = [c for c in design if c.startswith(("p_a_", "p_b_"))]
    design[prob_cols] = design[prob_cols].astype(float).round(4)  # float32 grid values, written plainly
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        pop = pops[s % len(pops)]
        row = {"subject": s}
        for p in model.params:
            u = float(p.transform.inverse(DEMO_TRUTH[pop][p.name])) + DEMO_SPREAD * rng.normal()
            row[p.name] = float(p.transform.forward(u))
        rows.append(row)
    table = cogfit.simulate(model, design, pd.DataFrame(rows), seed=seed + 1)
    table["subject"] = [f"sim{s:02d}" for s in table["subject"]]
    table["source"] = f"simulated by cogfit ({DEMO_MODEL}, seed {seed})"
    return table


def _labels(doc: str) -> tuple[str, str]:
    """A parameter's one-line doc as a title and its unit: ``"loss aversion (1 = none)"`` ->
    ``("loss aversion", "1 = none")``; cross-references ("see ref") are dropped."""
    title, _, detail = doc.partition(" (")
    parts = [x.strip() for x in detail.rstrip(")").split(";") if x.strip() and not x.strip().startswith("see ")]
    return title, "; ".join(parts)


def figure(fit, truth: dict | None = None):
    """One panel per parameter: each population's typical-subject posterior (histogram densities),
    with the simulated values dashed when ``truth`` is known. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure

    params = [p.name for p in fit.model.params]
    post = fit.posterior
    fig = Figure(figsize=(4 * len(params), 3.6))
    axes = fig.subplots(1, len(params))
    for ax, name in zip(np.atleast_1d(axes), params):
        for g, pop in enumerate(fit.data.populations):
            draws = post[f"{name}_group"].values[..., g].ravel()
            ax.hist(draws, bins=40, alpha=0.5, density=True, color=f"C{g}", label=pop)
            if truth and pop in truth:
                ax.axvline(truth[pop][name], color=f"C{g}", ls="--")
        title, unit = _labels(fit.model.param(name).doc)
        ax.set_title(f"{name}: {title}", fontsize=9)
        ax.set_xlabel(f"{name} of the typical subject" + (f" ({unit})" if unit else ""), fontsize=8)
        ax.set_ylabel("posterior density")
        ax.legend(fontsize=7)
    fixed = ", ".join(f"{k} = {v:g}" for k, v in fit.model.fixed.items() if v)   # ref = 0: no reference stake
    fig.suptitle(f"{fit.model.name}{f' ({fixed})' if fixed else ''}: posterior of each population's typical "
                 "subject" + ("; dashed lines: the values simulated" if truth else ""), fontsize=10)
    fig.tight_layout()
    return fig


def difference_table(fit, truth: dict | None = None, prob: float | None = None) -> pd.DataFrame:
    """:meth:`cogfit.Fit.differences` of the typical subjects, rounded; with the true difference
    when the populations' truth is known (simulated data)."""
    rows = fit.differences(prob=prob)
    columns = ["param", "condition", "contrast", "mean", "lo", "hi", "p_positive", "r_hat"]
    df = rows[[c for c in columns if c in rows]].round(3)
    if truth:
        df["truth"] = [round(truth[r.b][r.param] - truth[r.a][r.param], 3) for r in rows.itertuples()]
    return df


def population_table(fit, truth: dict | None = None, prob: float | None = None) -> pd.DataFrame:
    """Per-population posterior of each parameter's typical-subject value (natural scale): mean and
    equal-tailed ``prob`` interval ``lo``/``hi`` (default ArviZ's ``stats.ci_prob``)."""
    from cogfit._interval import ci_prob, stamp

    post = fit.posterior
    rows = []
    prob = ci_prob(prob)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    for p in fit.model.params:
        da = post[f"{p.name}_group"]
        for g, pop in enumerate(fit.data.populations):
            v = da.values[:, :, g].ravel() if da.ndim == 3 else da.values[:, :, g].reshape(-1, da.shape[-1])
            lo, hi = np.quantile(v, q, axis=0)
            row = dict(population=pop, param=p.name, mean=np.round(v.mean(0), 3),
                       lo=np.round(lo, 3), hi=np.round(hi, 3))
            if truth:
                row["truth"] = truth.get(pop, {}).get(p.name)
            rows.append(row)
    return stamp(pd.DataFrame(rows), prob)


def first_subjects(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows of the first ``n`` subjects of each population (of the table, without one)."""
    by = table["population"] if "population" in table else pd.Series("all", index=table.index)
    first = table.groupby(by, sort=False)["subject"].unique().map(lambda ids: list(ids[:n])).explode()
    return table[table["subject"].isin(first)]


def run(*, dataset: str | None, out: Path, draws: int, tune: int, chains: int, subjects: int | None = None,
        progress: bool = True) -> None:
    """Fit the demo and write ``out/fit.nc`` and ``out/populations.png``; ``out`` is created only
    once the data are loaded and valid. ``subjects``: of a real data set, the first N of each
    population (None: :data:`DEFAULT_SUBJECTS`; 0: all)."""
    import cogfit
    from cogfit._interval import ci_prob, describe

    if dataset is None:
        table = pd.read_csv(DEMO_CSV)
        model_name, by, fix, truth = DEMO_MODEL, (), {}, DEMO_TRUTH
        print(f"cogfit demo: embedded data {DEMO_CSV.name} — {table['source'].iloc[0]}; "
              f"{table['subject'].nunique()} subjects, {len(table)} choices")
    else:
        import cogfit.datasets

        if dataset not in REAL:
            raise ValueError(f"no demo for {dataset!r}; choose one of {', '.join(sorted(REAL))}")
        table = cogfit.datasets.load(dataset)
        if "condition" in table and (table["condition"] == "tie").any():
            ties = table["condition"] == "tie"
            print(f"dropping {int(ties.sum())} trials on items whose lexicality is a tie (see cogfit.datasets)")
            table = table[~ties]
        total = table["subject"].nunique()
        n = DEFAULT_SUBJECTS if subjects is None else subjects
        if n:
            table = first_subjects(table, n)
        spec = REAL[dataset]
        model_name, by, fix, truth = spec["model"], spec["by_condition"], spec.get("fix"), None
        print(f"cogfit demo: {dataset}: {table['subject'].nunique()} of {total} subjects, {len(table)} trials")
        if table["subject"].nunique() < total:
            print(f"  (the first {n} of each population; --subjects N for more, --subjects 0 for all "
                  f"{total}: the more subjects, the longer the fit)")
    model = cogfit.models.get(model_name)
    if fix:
        model = model.variant(model_name, fix=fix)
    print(cogfit.describe(model))
    data = cogfit.TrialData.from_table(table, model)
    out.mkdir(parents=True, exist_ok=True)
    fit = cogfit.fit(model, data, method=cogfit.NUTS(draws=draws, tune=tune, chains=chains),
                     hierarchy=cogfit.Hierarchy(by_condition=by), seed=0, progress=progress)
    interval = describe(ci_prob())
    print(f"\n{fit}\nper-population parameters (typical subject: posterior mean; lo, hi: {interval}):")
    print(population_table(fit, truth).to_string(index=False))
    if len(fit.data.populations) > 1:
        print(f"\ndifferences between populations (typical subject; lo, hi: {interval}):")
        print(difference_table(fit, truth).to_string(index=False))
    print("\ndiagnostics:", fit.check())
    fit.save(out / "fit.nc")
    figure(fit, truth).savefig(out / "populations.png", dpi=110)
    print(f"\nwrote {out / 'fit.nc'} and {out / 'populations.png'}")
    if len(fit.data.populations) > 1 and np.sum(fit.data.population == 0) >= 4:   # how alike (cogfit.align)
        alignment = cogfit.align(fit, fit.data.populations[0])
        print(f"\n{alignment.summary()}")
        alignment.save(out / "alignment")
        print(f"wrote the alignment report {out / 'alignment' / 'alignment.md'}")


if __name__ == "__main__":
    DEMO_CSV.parent.mkdir(exist_ok=True)
    make_demo_table().to_csv(DEMO_CSV, index=False)
    print(f"wrote {DEMO_CSV}")
