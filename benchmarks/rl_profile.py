"""Profile log-likelihood of single dezfouli2019 participants over their mean learning rate
(float64, BFGS; a script, not a test).

On a grid of ``a`` (logit scale), ``alpha_pos = sigmoid(a + d)`` and ``alpha_neg =
sigmoid(a - d)``; ``d``, ``log beta`` and ``beta_c`` are maximised (BFGS from three fixed starts
and from the previous grid point's optimum: a profile, so local optima can leave small dents).
Shows where the likelihood of a participant has two regimes: a fast learner (``a`` > 0) and a
slow one whose likelihood rises as ``a`` -> -inf with ``alpha * beta`` nearly constant (values
then move as reward counts within a block). The learner is ``BETA_MODEL`` (``beta`` itself).

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_profile.py [--participants s_20_d]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _dezfouli import BETA_MODEL, TWO_REGIMES, dezfouli_table, emit, parser, participants, start

import cogfit


def profile(model: cogfit.Model, data: cogfit.TrialData) -> list[dict]:
    """The profile of one participant's ``data``: one row per grid point of ``logit_alpha``."""
    from scipy.optimize import minimize

    trials = cogfit.Record({k: jnp.asarray(v[0]) for k, v in data.fields.items()})

    def nll(x, a):
        theta = cogfit.Record(dict(alpha_pos=jax.nn.sigmoid(a + x[2]), alpha_neg=jax.nn.sigmoid(a - x[2]),
                                   beta=jnp.exp(x[0]), beta_c=x[1]))
        return -jnp.sum(jnp.where(trials["mask"], model.loglik(theta, trials), 0.0))

    f, g = jax.jit(nll), jax.jit(jax.grad(nll))
    rows, previous = [], []
    for a in np.arange(-7.0, 5.01, 0.5):
        fits = [minimize(f, np.array(x0, float), args=(a,), jac=g, method="BFGS")
                for x0 in ([0.0, 1.0, 0.0], [2.0, 1.0, 0.0], [-1.0, 1.0, 0.0], *previous)]
        best = min((r for r in fits if np.isfinite(r.fun)), key=lambda r: r.fun)
        previous = [best.x]
        alpha = float(jax.nn.sigmoid(a))
        beta = float(np.exp(best.x[0]))
        rows.append(dict(logit_alpha=float(a), loglik=round(-float(best.fun), 2), beta=round(beta, 4),
                         alpha_times_beta=round(alpha * beta, 4), beta_c=round(float(best.x[1]), 3)))
    return rows


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--participants", nargs="+", default=list(TWO_REGIMES), help="dezfouli participant ids")
    args = start(ap, argv)
    jax.config.update("jax_enable_x64", True)
    model = cogfit.models.get(BETA_MODEL)
    out = {}
    for s, one in participants(dezfouli_table(), args.participants).items():
        data = cogfit.TrialData.from_table(one, model)
        out[s] = dict(population=str(one["population"].iloc[0]), choices=int(data.mask.sum()),
                      profile=profile(model, data))
    emit(dict(part="profile", model=model.name, precision="float64", participants=out), args.out)


if __name__ == "__main__":
    main()
