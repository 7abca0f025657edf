"""Per-participant maximum likelihood of dezfouli2019 under several bandit learners (a script).

Which learner describes the data best, and does each participant's likelihood have one optimum
or two? Each participant is fitted alone by BFGS (float64, JAX gradients) from six starts on the
unconstrained scale (mean learning rate logit -5, -1, 2 x inverse temperature log 0, 2; a choice
kernel's rate logit -2 or 2 with them); for every model the script reports

* ``loglik``: the sum of the participants' maximised log-likelihoods, ``aic`` and ``bic``
  (``k`` parameters per participant; ``n`` the participant's choices);
* ``slow_best``: participants whose best optimum is a *slow* learner (mean value learning rate
  below 0.05: values then move as reward counts, and with beta the optimum runs off along
  ``alpha * beta = const`` to ``beta -> inf``);
* ``two_regimes``: participants with a slow and a fast optimum (best of each) within 3 nats: the
  ones whose hierarchical posterior can put NUTS chains in separate modes.

Measured (``--q0 0 0.5``, all 101 participants): ``benchmarks/RESULTS.md``, dezfouli learners.

``--q0`` refits every bandit model with other initial values (e.g. ``--q0 0 0.5 0.9``): the
outcome is rewarded on 89% of trials, so with ``q0 = 0`` a slow learner's values count rewards,
nearly the same as counting choices (a long-memory habit).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

SLOW = 0.05          # mean value learning rate below which a learner counts rewards
CLOSE = 3.0          # nats: a slow and a fast optimum this close are two regimes of one participant


def starts(names: tuple[str, ...]) -> list[np.ndarray]:
    """Six unconstrained starting points for a learner with parameters ``names``."""
    out = []
    for rate, temp in itertools.product((-5.0, -1.0, 2.0), (0.0, 2.0)):
        x = np.zeros(len(names))
        for i, n in enumerate(names):
            if n in ("alpha", "alpha_pos", "alpha_neg"):
                x[i] = rate
            elif n in ("beta", "beta_h"):
                x[i] = temp
            elif n == "alpha_c":
                x[i] = -2.0 if temp else 2.0
            elif n == "beta_c":
                x[i] = 1.0
        out.append(x)
    return out


def value_rate(theta: dict) -> float:
    """Mean learning rate of the values (``alpha``, or the mean of ``alpha_pos`` and ``alpha_neg``)."""
    return theta["alpha"] if "alpha" in theta else 0.5 * (theta["alpha_pos"] + theta["alpha_neg"])


def fit_one(model, table) -> dict:
    """Best optimum overall, and the best slow and fast optima, of one participant."""
    from scipy.optimize import minimize

    import cogfit

    data = cogfit.TrialData.from_table(table, model)
    trials = cogfit.Record({k: jnp.asarray(v[0]) for k, v in data.fields.items()})

    def nll(x):
        theta = cogfit.Record({p.name: p.transform.forward(x[i]) for i, p in enumerate(model.params)})
        return -jnp.sum(jnp.where(trials["mask"], model.loglik(theta, trials), 0.0))

    f, g = jax.jit(nll), jax.jit(jax.grad(nll))
    best: dict[str, tuple[float, dict]] = {}
    for x0 in starts(model.param_names):
        r = minimize(f, x0, jac=g, method="BFGS")
        if not np.isfinite(r.fun):
            continue
        theta = {p.name: float(p.transform.forward(r.x[i])) for i, p in enumerate(model.params)}
        regime = "slow" if value_rate(theta) < SLOW else "fast"
        if regime not in best or -r.fun > best[regime][0]:
            best[regime] = (-float(r.fun), theta)
    top = max(best, key=lambda k: best[k][0])
    return dict(loglik=best[top][0], regime=top, theta=best[top][1], choices=int(data.mask.sum()),
                gap=abs(best["slow"][0] - best["fast"][0]) if len(best) == 2 else None)


def variants(names: list[str], q0s: list[float]):
    """``(label, q0, model)`` for every model name and initial value."""
    import cogfit
    from cogfit.models.bandit import bandit

    for name in names:
        base = cogfit.models.get(name)
        for q0 in q0s:
            model = base if q0 == 0 else bandit(f"{name}_q0_{q0:g}", base.param_names, q0=q0,
                                                reset_on_block="block" in base.requires)
            yield name, q0, model


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["bandit_dual_rep_blocks", "bandit_dual_persev_blocks"])
    ap.add_argument("--q0", type=float, nargs="+", default=[0.0], help="initial values to try")
    ap.add_argument("--participants", nargs="+", default=None, help="dezfouli ids (default: all 101)")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    import cogfit.datasets

    table = cogfit.datasets.load("psych201/dezfouli2019")
    subjects = args.participants or list(table.subject.unique())
    missing = sorted(set(subjects) - set(table.subject))
    if missing:
        raise SystemExit(f"no participants {missing} in dezfouli2019")
    results = []
    for name, q0, model in variants(args.models, args.q0):
        t0 = time.perf_counter()
        rows = {s: fit_one(model, table[table.subject == s]) for s in subjects}
        k = len(model.params)
        ll = sum(r["loglik"] for r in rows.values())
        n = np.array([r["choices"] for r in rows.values()])
        results.append(dict(
            model=name, q0=q0, params=k, participants=len(rows), loglik=round(ll, 1),
            aic=round(2 * k * len(rows) - 2 * ll, 1), bic=round(float(k * np.log(n).sum()) - 2 * ll, 1),
            slow_best=sorted(s for s, r in rows.items() if r["regime"] == "slow"),
            two_regimes=sorted(s for s, r in rows.items() if r["gap"] is not None and r["gap"] < CLOSE),
            wall_s=round(time.perf_counter() - t0, 1),
            per_participant={s: dict(loglik=round(r["loglik"], 2), gap=r["gap"] and round(r["gap"], 2),
                                     theta={p: round(v, 4) for p, v in r["theta"].items()})
                             for s, r in rows.items()}))
        short = {k: v for k, v in results[-1].items() if k != "per_participant"}
        print(json.dumps({**short, "slow_best": len(short["slow_best"]), "two_regimes": len(short["two_regimes"])}),
              flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(precision="float64", results=results), f, indent=1)


if __name__ == "__main__":
    main()
