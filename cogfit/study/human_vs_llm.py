"""The human-vs-LLM study: Psych-201's likelihood view and the cognitive-parameter view of two
language models, side by side, in one resumable folder.

    cogfit.study.human_vs_llm(["gemma-3-270m", "smollm2-135m-instruct"], "study/")

Steps (each skipped when its output exists, so an interrupted run resumes; within steps 1-2 the
language models' work is also kept per participant in ``work/`` JSONL files):

1. ``1_likelihood/``: mean NLL of the human responses (Psych-201's metric) under each model on
   the three shared experiments, Cohen's d of the post-trained model against the base model,
   per experiment and overall (``cohens_d.csv``, ``nll.csv``, ``nll.png``);
2. ``2_behaviour/``: both models play the dezfouli2019 bandit with the people's reward schedules
   and the spektor2024lossaversion lotteries (:mod:`cogfit.study._designs`), ``participants``
   each, at temperature 1 (``play_<task>_<model>.csv``); and their choice probabilities on the
   people's own histories, a second LLM population per model (``soft_<task>_<model>.csv``);
3. ``3_fits/``: one hierarchical fit per task of people, the played populations and the soft
   labels (``<task>.nc``; ``convergence.csv``);
4. ``4_alignment/<task>/``: :func:`cogfit.align` against the people with the split-half ceiling
   and the parameter-level predictive view; ``summary.md`` puts both views side by side.

``models`` are ``[base, post-trained]``. The two registry models differ in family and size as
well as in post-training, so their comparison is confounded; the summary says so.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cogfit.study import _designs as designs
from cogfit.study._record import check_or_write, model_record, note_step, versions

EXPERIMENTS = ("dezfouli2019", "spektor2024lossaversion", "guenther2020LDT")
TASKS = ("bandit", "lottery")
BANDIT_MODEL = "bandit_dual_rep_h_blocks"   # dual learning rates, one-back perseveration, beta_h
LOTTERY_MODEL = "cpt_linear_bias"          # CPT (linear weighting) with a side bias, reference stake 16
LOTTERY_REF = 16.0
ROLES = ("base", "post-trained")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big a study is; :func:`sizes` gives the full and the quick one."""

    participants: int          # LLM participants per model and task
    people: int                # people per task: twice the participants, so the ceiling has two halves
    nll_people: int            # people per experiment scored in step 1
    max_chars: int             # transcripts cut after this many characters before scoring
    blocks: int                # dezfouli blocks kept (of 12)
    block_trials: int          # trials kept per block
    lottery_trials: int        # spektor lottery pairs kept per person
    draws: int                 # NUTS draws per chain
    tune: int                  # NUTS warm-up per chain
    chains: int
    splits: int                # random splits of the people for the alignment ceiling
    predictive_draws: int
    predictive_samples: int
    full_nuts: bool            # the converging settings of benchmarks/RESULTS.md (dezfouli, spektor)


def sizes(participants: int, quick: bool) -> Sizes:
    """The study's sizes: ``quick`` runs each step in seconds with a tiny model (CI)."""
    if participants < 2:
        raise ValueError(f"participants must be >= 2 (the alignment ceiling splits people), got {participants}")
    if quick:
        n = min(participants, 4)
        return Sizes(participants=n, people=2 * n, nll_people=2, max_chars=2000, blocks=2, block_trials=8,
                     lottery_trials=10, draws=60, tune=60, chains=2, splits=5, predictive_draws=20,
                     predictive_samples=16, full_nuts=False)
    return Sizes(participants=participants, people=2 * participants, nll_people=participants, max_chars=4000,
                 blocks=12, block_trials=20, lottery_trials=98, draws=1000, tune=1000, chains=4, splits=50,
                 predictive_draws=200, predictive_samples=256, full_nuts=True)


def safe(name: str) -> str:
    """A model name as a file-name part (``HuggingFaceTB/x`` -> ``HuggingFaceTB_x``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _csv(path: Path, make, *args, **kwargs) -> tuple[pd.DataFrame, bool]:
    """``(table, computed)``: the CSV at ``path`` if it exists, else ``make(...)`` written there; read
    back from the file either way, so later steps see the same table in a fresh and a resumed run."""
    if path.exists():
        return pd.read_csv(path), False
    table = make(*args, **kwargs)
    tmp = path.with_suffix(".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return pd.read_csv(path), True


# --- step 1: the likelihood view ------------------------------------------------------------------


def _transcripts(n: int) -> list:
    import cogfit.datasets as D
    import cogfit.llm as L
    from cogfit.psych201 import read_jsonl

    return [L.Transcript(e, p.participant, p.text) for e in EXPERIMENTS
            for p in read_jsonl(D.path(f"psych201/{e}"))[:n]]


def _nll_table(scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per model and experiment: responses, mean NLL per response and its standard error."""
    rows = []
    for name, s in scores.items():
        for exp, g in s.groupby("experiment", sort=True):
            rows.append(dict(model=name, experiment=exp, n_responses=len(g), nll_mean=g["nll"].mean(),
                             nll_se=g["nll"].std(ddof=1) / np.sqrt(len(g))))
    return pd.DataFrame(rows)


def _score_job(path: Path, spec: Any, transcripts: list, size: Sizes, progress: bool) -> None:
    """One model's scores of the people's ``transcripts`` into ``path`` (its work file beside it)."""
    import cogfit.llm as L

    lm = _worker_lm(spec)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="max_chars=")   # the cut is the protocol
        _csv(path, L.score_transcripts, lm, transcripts, max_chars=size.max_chars,
             out=path.parent / "work" / f"{safe(lm.name)}.jsonl", progress=progress)


def likelihood(folder: Path, lms: Sequence, size: Sizes, *, progress: bool, specs: Sequence | None = None,
               executor: Any = None) -> dict[str, pd.DataFrame]:
    """Step 1: ``scores_<model>.csv``, ``nll.csv``, ``cohens_d.csv`` (last row ``overall``: the mean
    of the experiments' d, Psych-201's summary), ``nll.png``. ``specs``/``executor``: see :func:`_run_jobs`."""
    import cogfit.llm as L

    d = folder / "1_likelihood"
    (d / "work").mkdir(parents=True, exist_ok=True)
    paths = [d / f"scores_{safe(lm.name)}.csv" for lm in lms]
    todo = [(path, m) for path, m in zip(paths, _specs(lms, specs, executor)) if not path.exists()]
    transcripts = _transcripts(size.nll_people) if todo else []      # read once for every job
    _run_jobs([(_score_job, path, m, transcripts, size) for path, m in todo], executor, "scoring", progress,
              d / "work", len(lms) * len(transcripts))
    scores = {lm.name: pd.read_csv(path) for lm, path in zip(lms, paths)}

    def effect() -> pd.DataFrame:
        cd = L.cohens_d(scores[lms[0].name], scores[lms[1].name])
        table = cd.per_experiment.assign(base=lms[0].name, post=lms[1].name)
        overall = {"experiment": "overall", "n_responses": int(table["n_responses"].sum()),
                   "nll_base": table["nll_base"].mean(), "nll_post": table["nll_post"].mean(), "d": cd.d,
                   "base": lms[0].name, "post": lms[1].name}   # means over experiments, as d
        return pd.concat([table, pd.DataFrame([overall])], ignore_index=True)

    nll, _ = _csv(d / "nll.csv", _nll_table, scores)
    cohens, computed = _csv(d / "cohens_d.csv", effect)
    if computed or not (d / "nll.png").exists():
        from cogfit.study._summary import plot_nll

        plot_nll(nll, cohens).savefig(d / "nll.png", dpi=120, bbox_inches="tight")
    return {"nll": nll, "cohens_d": cohens}


# --- step 2: behaviour ------------------------------------------------------------------------------


def _one_hot(table: pd.DataFrame) -> pd.DataFrame:
    c = table["choice"].astype(int)
    return table.assign(choice_prob_1=(c == 0).astype(float), choice_prob_2=(c == 1).astype(float))


def _soft(lm, humans: pd.DataFrame, adapter: str, out: Path, progress: bool) -> pd.DataFrame:
    """The model's choice probabilities at every response of the people's (cut) sessions."""
    import cogfit.llm as L
    from cogfit.psych201 import render

    people = render(humans, adapter)
    soft = L.choice_probabilities(lm, people, adapter=adapter, out=out, progress=progress,
                                  population=f"soft:{lm.name}")
    return soft.assign(human=soft["subject"], subject="soft:" + lm.name + "/" + soft["subject"].astype(str))


def _people(folder: Path, size: Sizes) -> dict[str, pd.DataFrame]:
    """The people's tables of step 2 (written on first use): ``humans_<task>``, ``schedule_bandit``."""
    d = folder / "2_behaviour"
    both = functools.cache(lambda: designs.bandit_humans(size.people, blocks=size.blocks,
                                                         block_trials=size.block_trials))   # made once
    bandit, _ = _csv(d / "humans_bandit.csv", lambda: both()[0])
    schedule, _ = _csv(d / "schedule_bandit.csv", lambda: both()[1])
    lottery, _ = _csv(d / "humans_lottery.csv", designs.lottery_humans, size.people, trials=size.lottery_trials)
    return {"humans_bandit": bandit, "humans_lottery": lottery, "schedule_bandit": schedule}


def _llm_job(path: Path, kind: str, spec: Any, task: str, folder: Path, size: Sizes, seed: int,
             progress: bool) -> None:
    """One model's played trials (``kind="play"``) or soft labels (``"soft"``) of ``task`` into
    ``path``. LLM participant i meets the world of person i; the soft labels are read on the
    histories of the same ``participants`` people."""
    import cogfit.llm as L

    lm = _worker_lm(spec)
    d = folder / "2_behaviour"
    name = f"{task}_{safe(lm.name)}"
    people = _people(folder, size)
    humans, n = people[f"humans_{task}"], size.participants
    first = humans[humans["subject"].isin(list(dict.fromkeys(humans["subject"]))[:n])]
    if kind == "soft":
        adapter = {"bandit": designs.BANDIT, "lottery": designs.LOTTERY}[task]
        _csv(path, _soft, lm, first, adapter, d / "work" / f"soft_{name}.jsonl", progress)
        return
    play = (designs.bandit_task(first, people["schedule_bandit"], seed=seed, n=n, block_size=size.block_trials)
            if task == "bandit" else designs.lottery_task(first, seed=seed, n=n))
    _csv(path, L.play, lm, play, n_participants=n, seed=seed, temperature=1.0,
         out=d / "work" / f"play_{name}.jsonl", progress=progress)


def behaviour(folder: Path, lms: Sequence, size: Sizes, *, seed: int, progress: bool, specs: Sequence | None = None,
              executor: Any = None) -> dict[str, pd.DataFrame]:
    """Step 2: the people's tables (``humans_<task>.csv``, ``schedule_bandit.csv``), each model's
    played trials (``play_<task>_<model>.csv``) and soft labels (``soft_<task>_<model>.csv``)."""
    d = folder / "2_behaviour"
    (d / "work").mkdir(parents=True, exist_ok=True)
    people = _people(folder, size)
    paths = {(lm.name, task, kind): d / f"{kind}_{task}_{safe(lm.name)}.csv"
             for lm in lms for task in TASKS for kind in ("play", "soft")}
    jobs = [(_llm_job, paths[lm.name, task, kind], kind, m, task, folder, size, seed)
            for lm, m in zip(lms, _specs(lms, specs, executor)) for task in TASKS for kind in ("play", "soft")
            if not paths[lm.name, task, kind].exists()]
    _run_jobs(jobs, executor, "playing and soft labels", progress, d / "work",
              len(lms) * len(TASKS) * 2 * size.participants)
    out = {k: v for k, v in people.items() if k.startswith("humans_")}
    for (name, task, kind), path in paths.items():
        out[f"{kind}_{task}_{safe(name)}"] = pd.read_csv(path)
    return out


# --- language-model work, here or in worker processes ---------------------------------------------


def _specs(lms: Sequence, specs: Sequence | None, executor: Any) -> Sequence:
    """What each job gets: the loaded models here; in workers, what loads them (``specs``)."""
    return lms if executor is None or specs is None else specs


def _run_jobs(jobs: list[tuple], executor: Any, desc: str, progress: bool, work: Path, total: int) -> None:
    """Run ``(fn, *args)`` jobs (each writes its own files) one after another here, or all at once
    on ``executor`` (``submit(fn, *args)``: a ``ProcessPoolExecutor`` or a Dask client), where each
    job loads its model in the worker with one torch thread. Workers show no bars; this one counts
    the sessions finished in the ``work`` folder's JSONL files, out of ``total``."""
    if executor is None:
        for fn, *args in jobs:
            fn(*args, progress)
        return
    futures = [executor.submit(_in_worker, fn, *args, False) for fn, *args in jobs]
    with tqdm(total=total, initial=_sessions(work), disable=not progress, desc=desc, unit="session") as bar:
        while not all(f.done() for f in futures):
            time.sleep(POLL_S)
            bar.update(_sessions(work) - bar.n)
        for f in futures:
            f.result()
        bar.update(_sessions(work) - bar.n)


POLL_S = 5.0


def _sessions(work: Path) -> int:
    """Sessions (transcripts, participants) finished in ``work``'s JSONL files: a line each after
    the settings line (:class:`cogfit.llm._store.Store`)."""
    count = 0
    for path in work.glob("*.jsonl"):
        with open(path, "rb") as f:
            count += max(0, sum(1 for _ in f) - 1)
    return count


def _in_worker(fn, *args) -> None:
    import torch

    torch.set_num_threads(1)
    fn(*args)


_LOADED: dict[str, Any] = {}


def _worker_lm(spec: Any):
    """A job's model: ``spec`` itself when it is a loaded model, else loaded once per process."""
    import cogfit.llm as L

    if isinstance(spec, L.LM):
        return spec
    if spec not in _LOADED:
        _LOADED[spec] = L.load_lm(spec, threads=1)   # threads: a pool's processes share the cores
    return _LOADED[spec]


# --- step 3: fits ------------------------------------------------------------------------------------


def model_of(task: str):
    """The cognitive model fitted to ``task``'s populations."""
    import cogfit

    if task == "bandit":
        return cogfit.models.get(BANDIT_MODEL)
    model = cogfit.models.get(LOTTERY_MODEL)
    return model.variant(model.name, fix={"ref": LOTTERY_REF})


def method_of(task: str, size: Sizes):
    """``(method, hierarchy)``: in a full study the settings that converge on the people alone
    (benchmarks/RESULTS.md: dezfouli's Student-t population with nu = 4, centring and start from
    an SVI pilot, mode jumps, one population at a time; spektor's defaults with ref = 16), and for
    the lotteries the remedies the warnings name on the full study's LLM populations
    (``target_accept=0.95``, twice the draws)."""
    import cogfit

    base = dict(draws=size.draws, tune=size.tune, chains=size.chains)
    if not size.full_nuts:
        # non-centred, no SVI pilot: what the few trials of a quick study get from any centring rule
        return cogfit.NUTS(**base, chain_method="sequential", centered=False), cogfit.Hierarchy()
    if task == "bandit":
        return (cogfit.NUTS(**base, centered="auto", init="svi", jumps="auto", blocks="population"),
                cogfit.Hierarchy(population="student_t", nu=4.0))
    # the remedies the warnings name for the LLM populations' divergences and R-hat (RESULTS.md)
    return (cogfit.NUTS(**{**base, "draws": 2 * size.draws}, centered="auto", target_accept=0.95),
            cogfit.Hierarchy())


def fit_table(task: str, beh: dict[str, pd.DataFrame], lms: Sequence) -> pd.DataFrame:
    """People, each model's players and soft labels in one table; people's and players' choices
    as one-hot ``choice_prob_*`` (the same likelihood), the soft labels as the model's own."""
    cols = ["subject", "trial", "choice", "population", "choice_prob_1", "choice_prob_2"]
    cols += ["reward", "block"] if task == "bandit" else designs.LOTTERY_COLUMNS
    parts = [_one_hot(beh[f"humans_{task}"])]
    for lm in lms:
        parts.append(_one_hot(beh[f"play_{task}_{safe(lm.name)}"]))
    for lm in lms:
        parts.append(beh[f"soft_{task}_{safe(lm.name)}"])
    table = pd.concat([p[cols] for p in parts], ignore_index=True)
    return table.assign(subject=table["subject"].astype(str))


def worst_value(fit: Any) -> str:
    """The first row of ``fit.flags()`` (a split value, else the highest R-hat) as text, e.g.
    ``"beta_h_sigma [llm:m] R-hat 1.063, bulk ESS 65"``; ``""`` when nothing fails."""
    flags = fit.flags()
    if flags.empty:
        return ""
    r = flags.iloc[0]
    who = r["population"] if pd.isna(r["subject"]) else f"{r['subject']}, {r['population']}"
    return f"{r['variable']} [{who}] R-hat {r['r_hat']:.3f}, bulk ESS {r['ess_bulk']:.0f}"


def fits(folder: Path, beh: dict[str, pd.DataFrame], lms: Sequence, size: Sizes, *, seed: int,
         progress: bool) -> dict[str, Any]:
    """Step 3: ``<task>.nc`` per task and ``convergence.csv`` (max R-hat, min bulk ESS, divergences,
    the worst value of :meth:`cogfit.Fit.flags`)."""
    import cogfit

    d = folder / "3_fits"
    d.mkdir(parents=True, exist_ok=True)
    out, rows = {}, []
    for task in TASKS:
        path = d / f"{task}.nc"
        if path.exists():
            out[task] = cogfit.load(path)
        else:
            model = model_of(task)
            method, hierarchy = method_of(task, size)
            data = cogfit.TrialData.from_table(fit_table(task, beh, lms), model)
            t = time.perf_counter()
            fit = cogfit.fit(model, data, method=method, hierarchy=hierarchy, seed=seed, progress=progress)
            tmp = d / f"{task}.tmp.nc"
            fit.save(tmp)
            tmp.replace(path)
            out[task] = fit
            note_step(folder / "study.json", f"fit_{task}", time.perf_counter() - t)
        check = out[task].check()
        rows.append(dict(task=task, model=out[task].model.name, populations=" ".join(out[task].data.populations),
                         **{k: check[k] for k in ("max_rhat", "min_ess_bulk", "divergences", "ok")},
                         worst=worst_value(out[task])))
    text, path = pd.DataFrame(rows).to_csv(index=False), d / "convergence.csv"
    if not path.exists() or path.read_text() != text:     # from the fits on disk, rewritten only when it changed
        (d / "convergence.tmp").write_text(text)
        (d / "convergence.tmp").replace(path)
    return out


# --- step 4: alignment and the summary ------------------------------------------------------------------


def alignment(folder: Path, fitted: dict[str, Any], size: Sizes, *, seed: int) -> dict[str, pd.DataFrame]:
    """Step 4: ``4_alignment/<task>/`` (:meth:`cogfit.alignment.Alignment.save`: tables, figures,
    report, predictive view); returns each task's alignment and predictive tables."""
    import cogfit
    from cogfit.alignment import predictive

    out = {}
    for task, fit in fitted.items():
        d = folder / "4_alignment" / task
        if not (d / "alignment.csv").exists():
            al = cogfit.align(fit, "human", n_splits=size.splits, seed=seed)
            lik = predictive(fit, "human", draws=size.predictive_draws, samples=size.predictive_samples, seed=seed)
            d.mkdir(parents=True, exist_ok=True)
            al.save(d, likelihood=lik)
        out[task] = pd.read_csv(d / "alignment.csv")
        out[f"{task}_likelihood"] = pd.read_csv(d / "alignment_likelihood.csv")
    return out


def _load(model: Any):
    import cogfit.llm as L

    if isinstance(model, L.LM):
        return model
    return L.load_lm(model)


def human_vs_llm(models: Sequence[Any], out: str | Path, *, participants: int = 30, quick: bool = False,
                 seed: int = 0, progress: bool = True, executor: Any = None) -> Path:
    """Run (or resume) the human-vs-LLM study into the folder ``out``; returns its path.

    Parameters
    ----------
    models
        ``[base, post-trained]``: short names of registry models (``"gemma-3-270m"``,
        ``"smollm2-135m-instruct"``), hub names, folders or loaded :class:`cogfit.llm.LM`\\ s.
    participants
        LLM participants per model and task (and people per task, and per experiment scored).
    quick
        Tiny sizes (:func:`sizes`): for CI with a tiny offline model.
    seed
        Seeds the play, the fits and the alignment splits; a rerun with the same seed into a
        fresh folder reproduces the tables.
    progress
        Progress bars.
    executor
        Runs the language models' jobs of steps 1-2 (per model: scoring; per model and task: play,
        soft labels) at once: anything with ``submit(fn, *args)``, e.g.
        ``ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))`` or a
        ``dask.distributed.Client``. Each worker loads the models from ``models`` itself and uses
        one torch thread. ``None``: one job after another in this process. The tables are the
        same either way.

    Writes ``study.json`` (settings, seeds, versions, each model's source manifest and weight
    hash, per step its wall time summed over the runs that worked on it) and the four steps'
    folders; ``summary.md`` last.
    """
    from cogfit.study._summary import write_summary

    if len(models) != 2:
        raise ValueError(f"give two models, [base, post-trained]; got {len(models)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    size = sizes(participants, quick)
    lms = [_load(m) for m in models]
    if lms[0].name == lms[1].name:
        raise ValueError(f"the two models have the same name {lms[0].name!r}; their populations need distinct labels")
    record = {"study": "human_vs_llm", "seed": seed, "quick": quick,
              "settings": {**dataclasses.asdict(size), "seed": seed, "temperature": 1.0,
                           "bandit_model": BANDIT_MODEL, "lottery_model": LOTTERY_MODEL, "lottery_ref": LOTTERY_REF,
                           "experiments": list(EXPERIMENTS)},
              "models": [model_record(lm, role, m if isinstance(m, str) else lm.name)
                         for lm, role, m in zip(lms, ROLES, models)],
              "versions": versions()}
    check_or_write(folder / "study.json", record)
    steps = tqdm(total=4, disable=not progress, desc="human-vs-LLM study")

    def step(name: str, marker: str, run, *args, **kwargs):
        if (folder / marker).exists():
            result = run(*args, **kwargs)                       # reads the step's files back
        else:
            t0 = time.perf_counter()
            try:
                result = run(*args, **kwargs)
            finally:                                            # an interrupted run's time counts too
                note_step(folder / "study.json", name, time.perf_counter() - t0, done=(folder / marker).exists())
        steps.update()
        return result

    nll = step("likelihood", "1_likelihood/cohens_d.csv", likelihood, folder, lms, size, progress=progress,
               specs=models, executor=executor)
    last_play = f"2_behaviour/soft_lottery_{safe(lms[1].name)}.csv"
    beh = step("behaviour", last_play, behaviour, folder, lms, size, seed=seed, progress=progress, specs=models,
               executor=executor)
    fitted = step("fits", "3_fits/convergence.csv", fits, folder, beh, lms, size, seed=seed, progress=progress)
    aligned = step("alignment", "4_alignment/lottery/alignment.csv", alignment, folder, fitted, size, seed=seed)
    steps.close()
    if not (folder / "summary.md").exists():
        t = time.perf_counter()
        write_summary(folder, nll, beh, aligned, pd.read_csv(folder / "3_fits" / "convergence.csv"), lms, quick=quick)
        note_step(folder / "study.json", "summary", time.perf_counter() - t)
    return folder
