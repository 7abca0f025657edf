"""Mode-jump displacements for dezfouli2019 participants with two modes, by BFGS from six starts,
compared with ``cogfit.NUTS(jumps="auto")``'s search (a script, not a test).

Each participant alone under its population (posterior means of a hierarchical fit saved by
``rl_nuts.py --save``, ``--fit``, as the prior: :func:`_dezfouli.under_population`), maximised
by BFGS in float64 from the six starts of ``learner_ml.py`` (learning rates' logit -5, -1, 2 by
log inverse temperature 0, 2). The best slow optimum (mean value learning rate below
``learner_ml.SLOW``) and the best fast one, if both exist, distinct (unconstrained values more
than 1 apart) and within ``--gap`` nats of each other, give ``{param: fast - slow}``: the moves
for ``rl_nuts.py --jumps FILE`` and ``rl_modes.py --jumps FILE``
(:mod:`cogfit.inference.jump`). Also runs the search of ``jumps="auto"``
(:func:`cogfit.inference.modes.find_jumps`) under the same populations and reports which
participants both find and how far their displacements differ (``auto``; a displacement and its
negative are the same move).

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_jumps.py --fit dez.nc --out jumps.json
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from _dezfouli import DIAGNOSES, dezfouli_table, emit, parser, populations, start, under_population

import cogfit


def bfgs_jump(model: cogfit.Model, data: cogfit.TrialData, gap: float) -> tuple[dict, float] | None:
    """``({param: fast - slow}, nats slow - fast)`` of one participant alone, or None."""
    from jax.flatten_util import ravel_pytree
    from learner_ml import SLOW, starts, value_rate
    from numpyro.infer.util import initialize_model
    from scipy.optimize import minimize

    from cogfit._hierarchy import model_args

    info = initialize_model(jax.random.key(0), cogfit.Hierarchy(pooling="none").build(model, data),
                            model_args=model_args(data))
    flat, unravel = ravel_pytree(info.param_info.z)
    f = jax.jit(lambda x: info.potential_fn(unravel(x)))
    g = jax.jit(jax.grad(lambda x: info.potential_fn(unravel(x))))
    best: dict[str, tuple[float, dict]] = {}
    for x0 in starts(model.param_names):
        z0 = {f"{n}_u": np.full(np.shape(info.param_info.z[f"{n}_u"]), x0[i]) for i, n in enumerate(model.param_names)}
        r = minimize(f, np.asarray(ravel_pytree(z0)[0]), jac=g, method="BFGS")
        if not np.isfinite(r.fun):
            continue
        x = {k[: -len("_u")]: float(np.ravel(v)[0]) for k, v in unravel(r.x).items()}
        theta = {p.name: float(p.transform.forward(x[p.name])) for p in model.params}
        regime = "slow" if value_rate(theta) < SLOW else "fast"
        if regime not in best or r.fun < best[regime][0]:
            best[regime] = (float(r.fun), x)
    if len(best) < 2:
        return None
    (f_slow, slow), (f_fast, fast) = best["slow"], best["fast"]
    if max(abs(fast[p] - slow[p]) for p in fast) > 1.0 and abs(f_slow - f_fast) < gap:
        return {p: round(fast[p] - slow[p], 4) for p in fast}, round(f_slow - f_fast, 2)
    return None


def auto_jumps(hier: cogfit.Fit, table: pd.DataFrame, gap: float) -> dict:
    """``jumps="auto"``'s search under the posterior-mean populations of ``hier``."""
    from cogfit.inference.modes import find_jumps

    data = cogfit.TrialData.from_table(table, hier.model, populations=DIAGNOSES)
    mu, sigma, nu = populations(hier)
    found = find_jumps(hier.model, data, mu, sigma, nu, key=jax.random.key(0), gap=gap)
    return {s: {p: round(v, 4) for p, v in d.items()} for s, d in found.items()}


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--fit", required=True, help="a hierarchical fit saved by rl_nuts.py --save")
    ap.add_argument("--gap", type=float, default=8.0,
                    help="largest log-density difference (nats) between a participant's two optima")
    args = start(ap, argv)
    jax.config.update("jax_enable_x64", True)
    hier = cogfit.load(args.fit)
    table = dezfouli_table()
    out, gaps = {}, {}
    for s, one in table.groupby("subject", sort=False):
        model = under_population(hier, str(one["population"].iloc[0]))
        found = bfgs_jump(model, cogfit.TrialData.from_table(one, model), args.gap)
        if found:
            out[s], gaps[s] = found
        if args.progress:
            print(s, found, flush=True)
    auto = auto_jumps(hier, table, args.gap)
    both = sorted(set(out) & set(auto))
    emit(dict(part="jumps", fit=args.fit, model=hier.model.name, gap=args.gap, participants=len(out),
              nats_slow_minus_fast=gaps, jumps=out,
              auto=dict(participants=len(auto), both=both, only_bfgs=sorted(set(out) - set(auto)),
                        only_auto=sorted(set(auto) - set(out)),
                        max_abs_difference=max((min(abs(out[s][p] - auto[s][p]), abs(out[s][p] + auto[s][p]))
                                                for s in both for p in out[s]), default=None),
                        jumps=auto)), args.out)


if __name__ == "__main__":
    main()
