"""End-to-end prospect theory: parameter recovery, and real data against per-subject MLE."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import cogfit

MODEL = cogfit.models.get("cpt_linear")
TRUE_GROUP = {"alpha": 0.8, "lam": 1.8, "tau": 0.5}  # natural-scale typical subject
TRUE_SD = {"alpha": 0.6, "lam": 0.6, "tau": 0.3}  # subject spread, unconstrained scale (as in real data, or less)


def spektor_like_design(n, t, rng):
    """50/50 two-outcome lotteries as in Spektor et al. (2024): 70% of lotteries mixed."""
    rows = []
    for s in range(n):
        for k in range(t):
            row = {"subject": s, "trial": k}
            for o in "ab":
                kind = rng.choice(["mixed", "gain", "loss"], p=[0.7, 0.15, 0.15])
                lo, hi = {"mixed": ((-40, -1), (1, 40)), "gain": ((1, 40), (1, 40)),
                          "loss": ((-40, -1), (-40, -1))}[kind]
                row[f"x_{o}_1"], row[f"x_{o}_2"] = float(rng.integers(*lo)), float(rng.integers(*hi))
                row[f"p_{o}_1"] = row[f"p_{o}_2"] = 0.5
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def recovery():
    n, t = 30, 200
    rng = np.random.default_rng(11)
    truth = {"subject": np.arange(n)}
    mu = {}
    for p in MODEL.params:
        mu[p.name] = float(p.transform.inverse(TRUE_GROUP[p.name]))
        truth[p.name] = np.asarray(p.transform.forward(mu[p.name] + TRUE_SD[p.name] * rng.normal(size=n)))
    truth = pd.DataFrame(truth)
    design = spektor_like_design(n, t, rng)
    table = cogfit.simulate(MODEL, design, truth, seed=6)
    data = cogfit.TrialData.from_table(table, MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cogfit.ConvergenceWarning)
        fit = cogfit.fit(MODEL, data, method=cogfit.NUTS(draws=400, tune=400, chains=2), seed=0, progress=False)
    return fit, truth, mu


@pytest.mark.slow
def test_group_means_covered_by_90_percent_intervals(recovery):
    fit, _, mu = recovery
    post = fit.posterior
    for name, m in mu.items():
        lo, hi = np.quantile(post[f"{name}_mu"].values[..., 0], [0.05, 0.95])
        assert lo <= m <= hi, (name, lo, m, hi)


@pytest.mark.slow
def test_subject_estimates_correlate_with_truth(recovery):
    fit, truth, _ = recovery
    sp = fit.subject_params().pivot(index="subject", columns="param", values="mean").loc[truth.subject]
    for name in ("lam", "alpha"):
        r = np.corrcoef(sp[name], truth[name])[0, 1]
        assert r >= 0.8, (name, r)
    assert fit.check()["divergences"] == 0


# ---- real data: spektor2024lossaversion -----------------------------------------------------

def _nll(u, x_a, p_a, x_b, p_b, choice):
    """Independent numpy likelihood of cpt_linear for one subject (u on the unconstrained scale)."""
    alpha, lam, tau = 2 / (1 + np.exp(-u[0])), np.exp(u[1]), np.exp(u[2])

    def value(x, p):
        v = np.where(x >= 0, np.abs(x) ** alpha, -lam * np.abs(x) ** alpha)
        return (p * v).sum(-1)

    eta = tau * (value(x_b, p_b) - value(x_a, p_a))
    return np.sum(np.logaddexp(0, np.where(choice == 1, -eta, eta)))


@pytest.mark.slow
def test_spektor_posterior_means_agree_with_per_subject_mle():
    """Hierarchical posterior means against independent per-subject MLEs (scipy, numpy likelihood).

    Several real subjects have no interior MLE (e.g. never accept a mixed gamble: lam -> inf,
    tau -> 0), where only the hierarchical posterior is finite; the comparison uses the subjects
    whose MLE is interior and requires most subjects to be such.
    """
    table = cogfit.datasets.load("psych201/spektor2024lossaversion")
    keep = table["subject"].drop_duplicates().iloc[:24]
    table = table[table["subject"].isin(keep)]
    data = cogfit.TrialData.from_table(table, MODEL)
    fit = cogfit.fit(MODEL, data, method=cogfit.NUTS(draws=300, tune=300, chains=2), seed=1, progress=False,
                     warn=False)
    post = fit.subject_params().pivot(index="subject", columns="param", values="mean")
    mle = {}
    for s, g in table.groupby("subject"):
        args = (g[["x_a_1", "x_a_2"]].to_numpy(), g[["p_a_1", "p_a_2"]].to_numpy(),
                g[["x_b_1", "x_b_2"]].to_numpy(), g[["p_b_1", "p_b_2"]].to_numpy(), g["choice"].to_numpy())
        best = min((optimize.minimize(_nll, x0, args=args, method="Nelder-Mead",
                                      options=dict(maxiter=4000, xatol=1e-6, fatol=1e-8))
                    for x0 in ([0.0, 0.0, -1.0], [0.5, 0.5, -2.0], [-0.5, 0.3, 0.0])), key=lambda r: r.fun)
        u = best.x
        mle[s] = {"alpha": 2 / (1 + np.exp(-u[0])), "lam": np.exp(u[1]), "tau": np.exp(u[2])}
    mle = pd.DataFrame(mle).T.loc[post.index]
    interior = mle.alpha.between(0.1, 1.9) & mle.lam.between(0.05, 20) & mle.tau.between(0.01, 30)
    assert interior.sum() >= 14, interior.sum()
    r_lam = np.corrcoef(np.log(post.lam[interior]), np.log(mle.lam[interior]))[0, 1]
    r_alpha = np.corrcoef(post.alpha[interior], mle.alpha[interior])[0, 1]
    print(f"interior MLE: {interior.sum()}/{len(mle)}; r(log lam) = {r_lam:.3f}; r(alpha) = {r_alpha:.3f}")
    assert r_lam >= 0.9, r_lam
    assert r_alpha >= 0.8, r_alpha
