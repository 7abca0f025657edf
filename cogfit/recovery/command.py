"""``cogfit recover``: a recovery study from the command line (tables and figures into a folder)."""

from __future__ import annotations

from pathlib import Path


def method_of(args):
    """The inference method object of the command's options."""
    import cogfit

    if args.method == "nuts":
        return cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains)
    cls = {"svi": cogfit.SVI, "map": cogfit.MAP}[args.method]
    return cls(steps=args.steps, learning_rate=args.learning_rate, draws=args.draws)


def executor_of(args):
    """A Dask client (``--scheduler``), a process pool (``--processes``) or None (this process)."""
    if args.scheduler:
        from distributed import Client
        return Client(args.scheduler)
    if args.processes > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        return ProcessPoolExecutor(args.processes, mp_context=multiprocessing.get_context("spawn"))
    return None


def close(executor) -> None:
    """Shut down what :func:`executor_of` made (a pool's ``shutdown``, a Dask client's ``close``)."""
    if executor is not None:
        (executor.shutdown if hasattr(executor, "shutdown") else executor.close)()


def run(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from cogfit.recovery import recover

    out = Path(args.out)
    design = pd.read_csv(args.design) if args.design else None
    executor = executor_of(args)
    try:
        res = recover(args.model, n_datasets=args.datasets, n_subjects=None if design is not None else args.subjects,
                      n_trials=None if design is not None else args.trials, design=design, method=method_of(args),
                      hierarchical=not args.no_hierarchy, seed=args.seed, executor=executor, out=out / "chunks",
                      chunk=args.chunk, progress=not args.quiet)
    finally:
        close(executor)
    summary, sbc = res.summary(), res.sbc()
    summary.to_csv(out / "summary.csv", index=False)
    sbc.to_csv(out / "sbc.csv", index=False)
    figures = {"recovery_subject.png": res.plot_recovery("subject"), "coverage.png": res.plot_coverage(),
               "sbc_subject.png": res.plot_sbc("subject")}
    if (res.table["level"] == "group").any():
        figures.update({"recovery_group.png": res.plot_recovery("group"), "sbc_group.png": res.plot_sbc("group")})
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    print(summary.round(3).to_string(index=False))
    print(f"\nwrote {out}/summary.csv, sbc.csv, {', '.join(figures)} and chunks/ (per-chunk estimates, Parquet)")
    return 0
