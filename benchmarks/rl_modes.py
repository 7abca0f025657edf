"""dezfouli2019 participants alone under their population as the prior, with long chains: how
often chains switch between a participant's two modes (a script, not a test).

Reads a hierarchical fit saved by ``rl_nuts.py --save`` (``--fit``); each participant in
``--participants`` is fitted alone (``pooling="none"``) with every parameter's prior set to its
population's posterior-mean ``N(mu, sigma)`` (Student-t with the posterior-mean ``nu`` for a
Student-t fit) on the unconstrained scale (:func:`_dezfouli.under_population`), NUTS 4 x
(1000 + ``--draws``). Prints per chain the fraction of draws in the slow mode (``alpha_pos``
below 0.05) and how often the chain switches mode: whether the modes hold mass each and how many
draws a chain needs to visit both. With ``--jumps`` (the file ``rl_jumps.py --out`` writes) the
participants listed there get their mode-jump move (``cogfit.NUTS(jumps=...)``).

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_modes.py --fit dez.nc --draws 5000 [--jumps jumps.json]
"""

from __future__ import annotations

import json
import time

import numpy as np
from _dezfouli import TWO_REGIMES, dezfouli_table, emit, parser, participants, start, under_population

import cogfit

SLOW_ALPHA = 0.05   # alpha_pos below this: the slow mode


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--fit", required=True, help="a hierarchical fit saved by rl_nuts.py --save")
    ap.add_argument("--participants", nargs="+", default=list(TWO_REGIMES), help="dezfouli participant ids")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--jumps", default=None, help="mode-jump moves: the JSON written by rl_jumps.py --out")
    args = start(ap, argv)
    hier = cogfit.load(args.fit)
    moves = {}
    if args.jumps:
        with open(args.jumps) as f:
            moves = json.load(f)["jumps"]
    out = {}
    for s, one in participants(dezfouli_table(), args.participants).items():
        pop = str(one["population"].iloc[0])
        model = under_population(hier, pop)
        data = cogfit.TrialData.from_table(one, model)
        jump = moves.get(s)
        t0 = time.perf_counter()
        fit = cogfit.fit(model, data, method=cogfit.NUTS(draws=args.draws, tune=1000, chains=4,
                                                         jumps=jump and {s: jump}),
                         hierarchy=cogfit.Hierarchy(pooling="none"), seed=args.seed, progress=False, warn=False)
        check = fit.check()
        slow = fit.posterior["alpha_pos"].values[..., 0] < SLOW_ALPHA              # (chain, draw)
        out[s] = dict(population=pop, jump=jump, wall_s=round(time.perf_counter() - t0, 1),
                      max_rhat=round(check["max_rhat"], 4), min_ess_bulk=round(check["min_ess_bulk"], 1),
                      divergences=check["divergences"],
                      slow_fraction=[round(float(c.mean()), 3) for c in slow],
                      switches=[int(np.sum(c[1:] != c[:-1])) for c in slow])
        if args.progress:
            print(s, out[s], flush=True)
    emit(dict(part="modes", model=hier.model.name, fit=args.fit, draws=args.draws, participants=out), args.out)


if __name__ == "__main__":
    main()
