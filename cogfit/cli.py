"""The ``cogfit`` command: fit, summary, demo, datasets, models."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import get_args

from cogfit._hierarchy import Pooling, Population  # imported by the cogfit package anyway

CORES_HELP = "CPU cores for NUTS chains, one chain per core at a time (0: all)"


def _use_cores(cores: int, chains: int) -> None:
    """Give JAX one CPU device per core (``cores``; 0 = every core this process may use), at most
    one per chain, so NUTS runs the chains at once instead of one after another on one core.
    Takes effect only before JAX has started (a new ``cogfit`` process); otherwise nothing changes.
    """
    import jax

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = min(cores or available, chains)
    if n > 1:
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:   # JAX already started in this process (cogfit.cli.main called from Python)
            pass


def _assignment(text: str) -> tuple[str, float]:
    """``"ref=16"`` -> ``("ref", 16.0)``."""
    name, _, value = text.partition("=")
    try:
        if name:
            return name, float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected NAME=VALUE with a number, got {text!r}")


class _Merge(argparse.Action):
    """Collect ``NAME=VALUE`` pairs into one dict (the option may be repeated)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, {**getattr(namespace, self.dest), **dict(values)})


def _cmd_fit(args) -> int:
    import pandas as pd

    import cogfit

    if args.method == "nuts":
        _use_cores(args.cores, args.chains)
    table = pd.read_csv(args.data)
    model = cogfit.models.get(args.model)
    if args.fix:
        model = model.variant(model.name, fix=args.fix)
    data = cogfit.TrialData.from_table(table, model)
    print(data, flush=True)
    centered = {"trials": None, "auto": "auto", "yes": True, "no": False}[args.centered]
    if args.method == "nuts":
        method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains, centered=centered,
                             blocks=args.blocks, init=args.init, dense_mass=args.dense_mass,
                             target_accept=args.target_accept,
                             pilot=cogfit.SVI(steps=args.steps, learning_rate=args.learning_rate))
    else:
        if centered == "auto":
            raise ValueError(f"--centered auto chooses centring from a pilot for NUTS; --method {args.method} "
                             "takes trials, yes or no")
        options = dict(steps=args.steps, learning_rate=args.learning_rate, draws=args.draws, centered=centered)
        method = cogfit.SVI(**options) if args.method == "svi" else cogfit.MAP(**options)
    hierarchy = cogfit.Hierarchy(pooling=args.pooling, population=args.population, nu=args.nu,
                                 by_condition=tuple(args.by_condition or ()))
    fit = cogfit.fit(model, data, method=method, hierarchy=hierarchy, seed=args.seed, progress=not args.quiet,
                     log_likelihood=args.log_likelihood)
    fit.save(args.out)
    print(fit.summary().to_string())
    print(f"\nwrote {args.out}")
    return 0


def _cmd_summary(args) -> int:
    import cogfit
    from cogfit._fit import ESS_MIN, RHAT_MAX

    fit = cogfit.load(args.path)
    print(fit)
    print(fit.summary().to_string())
    if len(fit.data.populations) > 1:
        summary = "group" if fit.meta["pooling"] != "none" else "members"
        label = "typical subject" if summary == "group" else "mean of the members"
        print(f"\ndifferences between populations ({label}):")
        print(fit.differences(summary=summary).round(3).to_string(index=False))
    if fit.meta["method"] == "nuts":
        check = fit.check()
        print("\ndiagnostics:", check)
        if not check["ok"]:
            flags = fit.flags()
            print(f"\n{len(flags)} values fail R-hat <= {RHAT_MAX} or bulk ESS >= "
                  f"{ESS_MIN}; {int(flags.split.sum())} have chains in separate modes "
                  "(split). Worst first:")
            print(flags.drop(columns="condition" if flags.condition.isna().all() else []).head(20).to_string())
    return 0


def _cmd_demo(args) -> int:
    from cogfit._demo import run

    _use_cores(args.cores, args.chains)
    run(dataset=args.dataset, out=Path(args.out), draws=args.draws, tune=args.tune,
        chains=args.chains, subjects=args.subjects, progress=not args.quiet)
    return 0


def _cmd_datasets(args) -> int:
    import cogfit.datasets

    for name in cogfit.datasets.available():
        print(cogfit.datasets.describe(name))
        print()
    return 0


def _cmd_models(args) -> int:
    import cogfit

    for name in cogfit.models.available():
        print(cogfit.describe(cogfit.models.get(name)))
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cogfit",
                                 description="Hierarchical Bayesian cognitive models for people and LLMs.")
    sub = ap.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a model to a tidy trials CSV and save the fit")
    f.add_argument("--model", required=True, help="registered model name (see `cogfit models`)")
    f.add_argument("--data", required=True, help="tidy CSV: subject, trial, choice, [rt], stimulus columns")
    f.add_argument("--method", default="nuts", choices=["nuts", "svi", "map"])
    f.add_argument("--out", default="fit.nc")
    f.add_argument("--draws", type=int, default=1000)
    f.add_argument("--tune", type=int, default=1000)
    f.add_argument("--chains", type=int, default=4)
    f.add_argument("--cores", type=int, default=0, help=CORES_HELP)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--pooling", default="partial", choices=get_args(Pooling))
    f.add_argument("--population", default="normal", choices=get_args(Population),
                   help="how subjects spread around their population (partial pooling): normal, or "
                        "Student-t with fitted degrees of freedom (robust to a few outlying subjects)")
    f.add_argument("--nu", type=float, default=None,
                   help="with --population student_t: fixed degrees of freedom (default: fitted, one per parameter)")
    f.add_argument("--by-condition", nargs="*", help="parameters that vary with the condition column")
    f.add_argument("--fix", nargs="+", type=_assignment, action=_Merge, default={}, metavar="NAME=VALUE",
                   help="hold parameters at values, or set the model's constants (e.g. cpt's ref=16)")
    f.add_argument("--init", default="median", choices=["median", "svi"],
                   help="where NUTS starts: the prior median, or draws from a short SVI fit")
    f.add_argument("--steps", type=int, default=5000, help="Adam steps (method svi, or --init svi)")
    f.add_argument("--learning-rate", type=float, default=0.01, help="Adam learning rate (svi)")
    f.add_argument("--centered", default="trials", choices=["trials", "auto", "yes", "no"],
                   help="NUTS subject effects: centred for subjects with >= 100 trials (trials), per subject "
                        "and parameter from an SVI pilot (auto), all centred (yes) or none (no)")
    f.add_argument("--blocks", default="joint", choices=["joint", "population"],
                   help="NUTS on the whole posterior, or on each population alone (normal population or fixed --nu)")
    f.add_argument("--dense-mass", action="store_true", help="NUTS with a dense mass matrix")
    f.add_argument("--target-accept", type=float, default=0.9, help="NUTS target acceptance (0..1)")
    f.add_argument("--log-likelihood", action="store_true", help="store per-trial log-likelihoods (for LOO)")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=_cmd_fit)

    s = sub.add_parser("summary", help="print the summary and diagnostics of a saved fit")
    s.add_argument("path")
    s.set_defaults(func=_cmd_summary)

    d = sub.add_parser("demo", help="fit the embedded simulated data set (or a named real one)")
    d.add_argument("--dataset", default=None,
                   help="e.g. psych201/spektor2024lossaversion (default: embedded simulated data)")
    d.add_argument("--out", default="cogfit-demo", help="output folder for the fit and the plot")
    d.add_argument("--draws", type=int, default=500)
    d.add_argument("--tune", type=int, default=500)
    d.add_argument("--chains", type=int, default=4)
    d.add_argument("--cores", type=int, default=0, help=CORES_HELP)
    d.add_argument("--subjects", type=int, default=0, help="use only the first N subjects of a real data set")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)

    ds = sub.add_parser("datasets", help="list named data sets with their sources and citations")
    ds.set_defaults(func=_cmd_datasets)
    m = sub.add_parser("models", help="list the registered models and their parameters")
    m.set_defaults(func=_cmd_models)

    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # a clear one-line message for users; --debug could re-raise
        from cogfit._data import DataError

        if isinstance(err, (DataError, FileNotFoundError, KeyError, ValueError)):
            print(f"cogfit {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
