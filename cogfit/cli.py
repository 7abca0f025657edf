"""The ``cogfit`` command: fit, summary, demo, datasets, models.

Argument parsing needs only the standard library; each subcommand imports what it uses, so
``cogfit --help`` and argument errors return at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

CORES_HELP = "CPU cores for NUTS chains, one chain per core at a time (0: all)"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"   # the first bytes of a netCDF-4 file (a saved fit)
# Errors that a user's input or environment causes: one line on stderr, exit status 2, no traceback.
EXPECTED = (ValueError, KeyError, OSError, FloatingPointError)


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


def read_table(path: str | os.PathLike):
    """A tidy table from a comma- or tab-separated file (tabs: a ``.tsv``/``.tab`` name or a first
    line with tabs and no commas); any other separator is an error naming the file."""
    import pandas as pd

    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = f.readline()
    tabs = path.suffix.lower() in (".tsv", ".tab") or ("\t" in header and "," not in header)
    table = pd.read_csv(path, sep="\t" if tabs else ",")
    if table.shape[1] == 1 and any(c in header for c in ";|"):
        raise ValueError(f"{path} is not comma- or tab-separated (first line: {header.strip()[:80]!r}); "
                         "save it as CSV or TSV")
    return table


def check_out(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Fail before any work when ``path`` cannot be written: its folder must exist (or, for an
    output ``folder``, be creatable) and be writable."""
    path = Path(path)
    if not folder and path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name such as {path / 'fit.nc'}")
    parent = path if folder else path.parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not folder and existing != parent:
        raise FileNotFoundError(f"--out {path}: folder {parent} does not exist (create it first)")
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PermissionError(f"--out {path}: cannot write into {existing}")
    return path


def _cmd_fit(args) -> int:
    import cogfit

    check_out(args.out)
    if args.method == "nuts":
        _use_cores(args.cores, args.chains)
    table = read_table(args.data)
    model = cogfit.models.get(args.model)
    if args.fix:
        model = model.variant(model.name, fix=args.fix)
    data = cogfit.TrialData.from_table(table, model)
    print(data, flush=True)
    # --centered not given: the method's own default
    centring = {} if args.centered is None else {
        "centered": {"trials": None, "auto": "auto", "yes": True, "no": False}[args.centered]}
    if args.method == "nuts":
        method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains, blocks=args.blocks,
                             init=args.init, dense_mass=args.dense_mass, target_accept=args.target_accept,
                             pilot=cogfit.SVI(steps=args.steps, learning_rate=args.learning_rate), **centring)
    else:
        if args.centered == "auto":
            raise ValueError(f"--centered auto chooses centring from a pilot for NUTS; --method {args.method} "
                             "takes trials, yes or no")
        options = dict(steps=args.steps, learning_rate=args.learning_rate, draws=args.draws, **centring)
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
    with open(args.path, "rb") as f:
        if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ValueError(f"{args.path} is not a saved fit (the netCDF file that `cogfit fit --out` or "
                             f"Fit.save writes); to fit a table: cogfit fit --model NAME --data {args.path}")
    import cogfit
    from cogfit._fit import ESS_MIN, RHAT_MAX
    from cogfit._interval import ci_prob, describe

    fit = cogfit.load(args.path)
    print(fit)
    print(fit.summary().to_string())
    if len(fit.data.populations) > 1:
        summary = "group" if fit.meta["pooling"] != "none" else "members"
        label = "typical subject" if summary == "group" else "mean of the members"
        print(f"\ndifferences between populations ({label}; lo, hi: {describe(ci_prob())}):")
        print(fit.differences(summary=summary).round(3).to_string(index=False))
    check = fit.check()
    print("\ndiagnostics:", check)
    if fit.meta["method"] == "nuts" and not check["ok"]:
        flags = fit.flags()
        print(f"\n{len(flags)} values fail R-hat <= {RHAT_MAX} or bulk ESS >= "
              f"{ESS_MIN}; {int(flags.split.sum())} have chains in separate modes "
              "(split). Worst first:")
        print(flags.drop(columns="condition" if flags.condition.isna().all() else []).head(20).to_string())
    return 0


def _cmd_align(args) -> int:
    import cogfit

    out = check_out(args.out, folder=True)
    fit = cogfit.load(args.fit)
    al = cogfit.align(fit, args.reference, params=args.params, prob=args.prob, n_splits=args.splits, seed=args.seed,
                      ceiling=args.ceiling)
    print(al.summary(args.measure))
    likelihood = None
    if args.likelihood:
        from cogfit.alignment import predictive

        likelihood = predictive(fit, args.reference, seed=args.seed)
        print("\nlog predictive density of the reference's members' data (nats per member):")
        print(likelihood.round(3).to_string(index=False))
    paths = al.save(out, measure=args.measure, likelihood=likelihood)
    print(f"\nwrote {len(paths)} files into {out}: " + ", ".join(p.name for p in paths))
    return 0


def _cmd_demo(args) -> int:
    from cogfit._demo import run

    check_out(args.out, folder=True)
    _use_cores(args.cores, args.chains)
    run(dataset=args.dataset, out=Path(args.out), draws=args.draws, tune=args.tune,
        chains=args.chains, subjects=args.subjects, progress=not args.quiet)
    return 0


def _cmd_recover(args) -> int:
    from cogfit.recovery.command import run

    return run(args)


def _cmd_study(args) -> int:
    check_out(args.out, folder=True)
    from cogfit.recovery.command import close, executor_of
    from cogfit.study import human_vs_llm

    executor = executor_of(args)
    try:
        folder = human_vs_llm(args.models, args.out, participants=args.participants, quick=args.quick,
                              seed=args.seed, progress=not args.quiet, executor=executor)
    except ImportError as err:   # cogfit[llm] or a registry model's package missing: the message names the install
        raise ValueError(str(err)) from err
    finally:
        close(executor)
    print((folder / "summary.md").read_text())
    print(f"wrote the study into {folder} (summary.md, study.json, 1_likelihood/ .. 4_alignment/)")
    return 0


def _cmd_datasets(args) -> int:
    import cogfit.datasets

    for name in cogfit.datasets.available():
        print(cogfit.datasets.describe(name))
        print()
    return 0


def data_columns(model) -> str:
    """The table columns ``model`` reads, e.g. ``subject, trial, choice (0..1), x_a_1..x_a_K, ...``;
    vector columns (numbered) are told apart by the shapes of the model's random design."""
    import jax

    cols = ["subject", "trial"]
    if model.n_options is not None:
        cols.append(f"choice (0..{model.n_options - 1})")
    if model.rt:
        cols.append("rt (s)")
    shapes = jax.eval_shape(lambda key: model.design(key, 2), jax.random.PRNGKey(0)) if model.design else {}

    def column(name: str) -> str:
        if name in shapes:
            return f"{name}_1..{name}_K" if len(shapes[name].shape) == 2 else name
        return name if name in model.outcomes else f"{name} (or {name}_1..{name}_K)"

    cols += [column(c) for c in model.requires]
    optional = [column(c) for c in model.design_requires if c not in model.requires]
    text = "  data: " + ", ".join(cols)
    if optional:
        text += "; optional: " + ", ".join(optional) + " (for posterior predictions)"
    return text + "; optional: population, condition, exclude"


def _cmd_models(args) -> int:
    import cogfit

    for name in cogfit.models.available():
        model = cogfit.models.get(name)
        print(cogfit.describe(model))
        print(data_columns(model))
        print()
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, without the library's source line."""
    print(f"cogfit: {category.__name__}: {message}", file=file or sys.stderr)


def parser() -> argparse.ArgumentParser:
    """The ``cogfit`` argument parser (standard library only)."""
    ap = argparse.ArgumentParser(prog="cogfit",
                                 description="Hierarchical Bayesian cognitive models for people and LLMs.")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = ap.add_subparsers(dest="command", required=True)

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs)

    f = add_parser("fit", help="fit a model to a tidy trials table (CSV or TSV) and save the fit")
    f.add_argument("--model", required=True, default=argparse.SUPPRESS,
                   help="registered model name (`cogfit models` lists them with their data columns)")
    f.add_argument("--data", required=True, default=argparse.SUPPRESS,
                   help="tidy CSV or TSV: subject, trial, choice, [rt], the model's columns")
    f.add_argument("--method", default="nuts", choices=["nuts", "svi", "map"], help="inference method")
    f.add_argument("--out", default="fit.nc", help="netCDF file to write (its folder must exist)")
    f.add_argument("--draws", type=int, default=1000, help="posterior draws (per chain for nuts)")
    f.add_argument("--tune", type=int, default=1000, help="NUTS warm-up iterations per chain")
    f.add_argument("--chains", type=int, default=4, help="NUTS chains")
    f.add_argument("--cores", type=int, default=0, help=CORES_HELP)
    f.add_argument("--seed", type=int, default=0, help="random seed")
    f.add_argument("--pooling", default="partial",
                   help="how subjects share information: partial (hierarchical), complete or none")
    f.add_argument("--population", default="normal",
                   help="how subjects spread around their population (partial pooling): normal, or "
                        "student_t with fitted degrees of freedom (robust to a few outlying subjects)")
    f.add_argument("--nu", type=float, default=None,
                   help="with --population student_t: fixed degrees of freedom (default: fitted, one per parameter)")
    f.add_argument("--by-condition", nargs="*", help="parameters that vary with the condition column")
    f.add_argument("--fix", nargs="+", type=_assignment, action=_Merge, default={}, metavar="NAME=VALUE",
                   help="hold parameters at values, or set the model's constants (e.g. cpt's ref=16)")
    f.add_argument("--init", default="median", choices=["median", "svi"],
                   help="where NUTS starts: the prior median, or draws from a short SVI fit")
    f.add_argument("--steps", type=int, default=5000, help="Adam steps (method svi, or --init svi)")
    f.add_argument("--learning-rate", type=float, default=0.01, help="Adam learning rate (svi)")
    f.add_argument("--centered", default=None, choices=["trials", "auto", "yes", "no"],
                   help="subject effects: per subject and parameter from an SVI pilot (auto, NUTS's default), "
                        "centred for subjects with >= 100 trials (trials, the default of svi and map), all "
                        "centred (yes) or none (no)")
    f.add_argument("--blocks", default="joint", choices=["joint", "population"],
                   help="NUTS on the whole posterior, or on each population alone (normal population or fixed --nu)")
    f.add_argument("--dense-mass", action="store_true", help="NUTS with a dense mass matrix")
    f.add_argument("--target-accept", type=float, default=0.9, help="NUTS target acceptance (0..1)")
    f.add_argument("--log-likelihood", action="store_true", help="store per-trial log-likelihoods (for LOO)")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=_cmd_fit)

    s = add_parser("summary", help="print the summary and diagnostics of a saved fit")
    s.add_argument("path", help="a fit saved by `cogfit fit` (netCDF)")
    s.set_defaults(func=_cmd_summary)

    a = add_parser("align", help="how human-like each population's parameters are: divergences from a "
                                 "reference population next to its split-half ceiling")
    a.add_argument("fit", help="a fit saved by `cogfit fit` (netCDF) with two or more populations, partial pooling")
    a.add_argument("--reference", default="human", help="the reference population")
    a.add_argument("--out", default="cogfit-align", help="output folder: CSV tables, PNG figures, alignment.md")
    a.add_argument("--params", nargs="+", default=None, help="parameters compared (default: all)")
    a.add_argument("--measure", default="w1", choices=["w1", "js", "kl_ref_pop", "kl_pop_ref", "overlap", "shift"],
                   help="measure of the summary, heatmap and report (all are in alignment.csv)")
    a.add_argument("--prob", type=float, default=0.94, help="probability of the intervals")
    a.add_argument("--splits", type=int, default=50, help="random splits of the reference for the ceiling")
    a.add_argument("--seed", type=int, default=0, help="seed of the splits")
    a.add_argument("--ceiling", default="members", choices=["members", "refit"],
                   help="group-level ceiling from the members' values in this fit, or from SVI refits of the splits")
    a.add_argument("--likelihood", action="store_true",
                   help="also how well each population's parameters predict the reference's choices (slower)")
    a.set_defaults(func=_cmd_align)

    d = add_parser("demo", help="fit the embedded simulated data set (or a named real one)")
    d.add_argument("--dataset", default=None,
                   help="e.g. psych201/spektor2024lossaversion (default: embedded simulated data)")
    d.add_argument("--out", default="cogfit-demo", help="output folder for the fit and the plot")
    d.add_argument("--draws", type=int, default=500, help="NUTS draws per chain")
    d.add_argument("--tune", type=int, default=500, help="NUTS warm-up iterations per chain")
    d.add_argument("--chains", type=int, default=4, help="NUTS chains")
    d.add_argument("--cores", type=int, default=0, help=CORES_HELP)
    d.add_argument("--subjects", type=int, default=None,
                   help="a real data set: the first N subjects of each population, 0 for all (default: "
                        "the demo's small subset, printed when it runs)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)

    r = add_parser("recover", help="parameter recovery and calibration (SBC) study: simulate, fit, compare")
    r.add_argument("model", help="registered model name (see `cogfit models`)")
    r.add_argument("--datasets", type=int, required=True, help="number of simulated data sets")
    r.add_argument("--subjects", type=int, default=20, help="subjects per data set (random design)")
    r.add_argument("--trials", type=int, default=100, help="trials per subject (random design)")
    r.add_argument("--design", default=None, help="a design table (CSV) shared by every data set, instead of random")
    r.add_argument("--method", default="svi", choices=["svi", "map", "nuts"])
    r.add_argument("--steps", type=int, default=5000, help="Adam steps (svi, map)")
    r.add_argument("--learning-rate", type=float, default=0.01, help="Adam learning rate (svi, map)")
    r.add_argument("--draws", type=int, default=1000, help="posterior draws per data set (per chain for nuts)")
    r.add_argument("--tune", type=int, default=1000, help="NUTS warm-up iterations")
    r.add_argument("--chains", type=int, default=2, help="NUTS chains")
    r.add_argument("--no-hierarchy", action="store_true", help="independent subjects (pooling none)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--chunk", type=int, default=100, help="data sets per compiled call / per task")
    r.add_argument("--processes", type=int, default=1, help="worker processes on this machine")
    r.add_argument("--scheduler", default=None, help="address of a Dask scheduler (tcp://host:8786)")
    r.add_argument("--out", default="cogfit-recovery", help="output folder; a rerun resumes from its chunks")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_cmd_recover)

    st = add_parser("study", help="whole studies from data and language models to a report folder")
    studies = st.add_subparsers(dest="study", required=True)
    hv = studies.add_parser("human-vs-llm", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                            help="Psych-201 likelihood and cognitive-parameter alignment of two LLMs against people")
    hv.add_argument("--models", nargs=2, required=True, default=argparse.SUPPRESS, metavar=("BASE", "POST"),
                    help="base and post-trained model: registry short names (gemma-3-270m, smollm2-135m-instruct), "
                         "hub names or folders")
    hv.add_argument("--out", required=True, default=argparse.SUPPRESS,
                    help="study folder; a rerun resumes from the steps already written")
    hv.add_argument("--participants", type=int, default=30, help="LLM participants per model and task")
    hv.add_argument("--quick", action="store_true", help="tiny sizes (few participants and trials, short NUTS)")
    hv.add_argument("--seed", type=int, default=0, help="seed of play, fits and alignment splits")
    hv.add_argument("--quiet", action="store_true", help="no progress bars")
    hv.add_argument("--processes", type=int, default=1,
                    help="worker processes for the language models' scoring, play and soft labels (one torch "
                         "thread each; e.g. the number of cores)")
    hv.add_argument("--scheduler", default=None, help="address of a Dask scheduler (tcp://host:8786) for that work")
    hv.set_defaults(func=_cmd_study)

    ds = add_parser("datasets", help="list named data sets with their sources and citations")
    ds.set_defaults(func=_cmd_datasets)
    m = add_parser("models", help="list the registered models, their parameters and data columns")
    m.set_defaults(func=_cmd_models)
    return ap


def _message(err: BaseException, args) -> str:
    """One line for an expected error; a data row is also given as the line of the file read."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    index = getattr(err, "index", None)
    if args.command == "fit" and isinstance(index, int):
        text += f" [line {index + 2} of {args.data}]"
    return f"cogfit {args.command}: error: {text}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except EXPECTED as err:
            if args.debug:
                raise
            print(_message(err, args), file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
