"""Validate a tidy trials table and pack it as (subjects, max_trials) arrays with a mask.

Why (subjects, max_trials): every sum becomes a reduction along a contiguous axis and the
per-subject likelihood is vmapped over subjects; a flat trial vector indexed by subject id
turns the gradient into a scatter-add (far slower on a GPU: ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cogfit._model import Model
from cogfit._record import Record

SUBJECT, TRIAL, CHOICE, RT = "subject", "trial", "choice", "rt"
POPULATION, CONDITION, EXCLUDE, SOFT = "population", "condition", "exclude", "choice_prob"
_PROB_TOL = 1e-6
RESERVED = (SUBJECT, TRIAL, CHOICE, RT, POPULATION, CONDITION, EXCLUDE, SOFT, "mask")
DESIGN = "design_"   # field design_<p>: parameter p's regression design (S, T, K)
MS_MEDIAN = 20.0   # a median rt above this many "seconds" is almost surely in milliseconds


def design_field(param: str) -> str:
    """The field holding parameter ``param``'s regression design ``(S, T, K)``."""
    return DESIGN + param


class DataError(ValueError):
    """Invalid trial data; the message names the column, subject and row.

    "row N" is the table's index label of the offending row (``table.loc[N]``), the 0-based data
    row of a table read by ``pandas.read_csv``: line ``N + 2`` of the file, after its header.
    ``index`` holds that label (``None`` when the error is not about one row).
    """

    def __init__(self, message: str, index=None):
        super().__init__(message)
        self.index = index


def _where(df: pd.DataFrame, mask: np.ndarray, column: str, what: str) -> DataError:
    """A DataError naming the first offending row (and how many rows are affected)."""
    idx = np.flatnonzero(np.asarray(mask))
    first = idx[0]
    row = df.index[first]
    subject = df[SUBJECT].iloc[first] if SUBJECT in df else "?"
    value = df[column].iloc[first] if column in df else "?"
    row, subject, value = (x.item() if isinstance(x, np.generic) else x for x in (row, subject, value))
    more = f" ({len(idx)} rows in all)" if len(idx) > 1 else ""
    return DataError(
        f"column {column!r}, subject {subject!r}, row {row!r}: {what} (value {value!r}){more}", index=row
    )


def _numbered(df: pd.DataFrame, name: str) -> list[str]:
    """Columns ``name_1, name_2, ...`` (contiguous from 1), or [] if there are none."""
    pat = re.compile(rf"^{re.escape(name)}_(\d+)$")
    nums = sorted(int(m.group(1)) for c in df.columns if (m := pat.match(str(c))))
    if nums and nums != list(range(1, len(nums) + 1)):
        gaps = [f"{name}_{n}" for n in range(1, max(nums) + 1) if n not in nums]
        raise DataError(
            f"column{'s' if len(gaps) > 1 else ''} {', '.join(gaps)} missing: numbered columns "
            f"{name}_1, {name}_2, ... must run from 1 without gaps; found {[f'{name}_{n}' for n in nums]}"
        )
    return [f"{name}_{n}" for n in nums]


def _vectors_fit(model: Model, columns: dict[str, np.ndarray], parts: dict[str, list[str]]) -> None:
    """Vector columns of different lengths (``x_b_1..3`` beside ``x_a_1..4``) are an error if the
    model's log-likelihood cannot combine them (traced once, on shapes only)."""
    lengths = {k: len(v) for k, v in parts.items() if v and k in model.requires}
    if len(set(lengths.values())) <= 1 or CHOICE not in columns:
        return
    import jax

    n = 2
    trials = Record({**{k: v[:n] for k, v in columns.items()}, "mask": np.ones(n, bool)})
    theta = model.theta({p.name: float(p.transform.forward(0.0)) for p in model.params})
    try:
        jax.eval_shape(model.loglik, theta, trials)
    except (TypeError, ValueError) as err:
        longest = max(lengths.values())
        short = [f"{k}_{longest} (have {', '.join(parts[k])})" for k, m in lengths.items() if m < longest]
        raise DataError(
            f"model {model.name!r} cannot combine vector columns of different lengths "
            f"({', '.join(f'{k}: {m}' for k, m in lengths.items())}); missing {'; '.join(short)}? "
            f"({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from None


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    """A float column, with errors for non-numeric, NaN and infinite values."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        raise _where(df, bad.to_numpy(), column, "not a number")
    arr = values.to_numpy(dtype=np.float64)
    if np.isnan(arr).any():
        raise _where(df, np.isnan(arr), column, "missing value (NaN)")
    if np.isinf(arr).any():
        raise _where(df, np.isinf(arr), column, "infinite value")
    return arr


def _labels(
    df: pd.DataFrame, column: str, declared: Sequence[str] | None, default: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and labels of a categorical column (declared order, else first appearance)."""
    if column not in df:
        if declared is not None and list(declared) != [default]:
            raise DataError(f"column {column!r} is missing but labels {list(declared)} were given")
        return np.zeros(len(df), np.int32), (default,)
    raw = df[column]
    if raw.isna().any():
        raise _where(df, raw.isna().to_numpy(), column, "missing label")
    values = raw.astype(str)
    labels = tuple(str(x) for x in declared) if declared is not None else tuple(pd.unique(values))
    lookup = {lab: i for i, lab in enumerate(labels)}
    unknown = ~values.isin(lookup)
    if unknown.any():
        raise _where(df, unknown.to_numpy(), column, f"unknown label; expected one of {list(labels)}")
    return values.map(lookup).to_numpy(np.int32), labels


def _distinct_as_text(subjects: tuple) -> None:
    """Ids are written as text (saved fits, tables): ``1`` and ``"1"`` would become one subject."""
    seen: dict[str, object] = {}
    for s in subjects:
        if str(s) in seen:
            raise DataError(f"column {SUBJECT!r}: ids {seen[str(s)]!r} and {s!r} differ only in type "
                            "(they read the same as text); make them distinct, e.g. prefix the LLM's ids")
        seen[str(s)] = s


@dataclasses.dataclass(frozen=True, eq=False)
class TrialData:
    """Trials packed as arrays shaped ``(subjects, max_trials[, k])`` with a mask.

    Attributes
    ----------
    fields
        ``choice`` (int32), ``rt`` (seconds), the model's stimulus columns (float; vector columns
        carry a trailing axis), ``choice_prob`` (soft labels, if given) and ``mask`` (bool, True
        for real trials). Padded entries repeat the subject's last real trial.
    subjects
        Subject ids, in order of first appearance in the table.
    population, populations
        Population index of each subject ``(S,)`` and the population labels.
    condition, conditions
        Condition index of each trial ``(S, T)`` and the condition labels.
    trial
        Original trial numbers ``(S, T)`` (-1 where padded).
    row
        Row label in the source table of each trial ``(S, T)`` (for error messages and output).
    excluded
        Number of rows the table itself flagged with ``exclude=True`` (removed explicitly).
    covariates
        Names of the numeric covariate columns kept in ``fields`` (``(S, T)`` float each) for
        regressions (:class:`cogfit.Hierarchy` ``formulas``).
    designs
        Parameter -> coefficient names of its regression design, the field ``design_<p>``
        ``(S, T, K)`` (intercept left out): set by :meth:`cogfit.Hierarchy.prepare`.
    """

    fields: Record
    subjects: tuple
    population: np.ndarray
    populations: tuple[str, ...]
    condition: np.ndarray
    conditions: tuple[str, ...]
    trial: np.ndarray
    row: np.ndarray
    excluded: int = 0
    covariates: tuple[str, ...] = ()
    designs: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        return self.fields["mask"]

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def max_trials(self) -> int:
        return self.mask.shape[1]

    @property
    def n_trials(self) -> np.ndarray:
        """Real trials per subject ``(S,)``."""
        return self.mask.sum(axis=1)

    @property
    def subject_populations(self) -> np.ndarray:
        """Population label of each subject ``(S,)``."""
        return np.asarray(self.populations)[self.population]

    def __repr__(self) -> str:
        return (
            f"TrialData({self.n_subjects} subjects, {int(self.mask.sum())} trials, "
            f"max_trials={self.max_trials}, populations={list(self.populations)}, "
            f"conditions={list(self.conditions)}, fields={list(self.fields)})"
        )

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        model: Model | str,
        *,
        populations: Sequence[str] | None = None,
        conditions: Sequence[str] | None = None,
        responses: bool = True,
        covariates: Sequence[str] = (),
    ) -> "TrialData":
        """Validate ``table`` against ``model`` and pack it.

        Parameters
        ----------
        table
            One row per trial: ``subject``, ``trial`` (order within subject), ``choice``
            (codes ``0..n_options-1``), ``rt`` (seconds, if the model needs it), the model's
            ``requires`` columns (a vector column ``x`` as ``x_1, x_2, ...``), optional
            ``population`` and ``condition`` labels, optional soft labels
            ``choice_prob_1..K``, optional boolean ``exclude`` (rows removed explicitly and
            counted in ``excluded``).
        model
            The model (or its registered name) whose columns are required.
        populations, conditions
            Expected labels in order; any other label in the table is an error.
        responses
            False for a design table (no ``choice``/``rt`` yet), e.g. before simulating.
        covariates
            Numeric columns kept for regressions (``Hierarchy(formulas=...)``), trial- or
            subject-level (a subject-level one repeats its value on each trial); each is a field
            ``(S, T)`` and a variable of the fit's ``constant_data``.
        """
        if isinstance(model, str):
            from cogfit.models import get
            model = get(model)
        if not isinstance(table, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(table).__name__}")
        df = table
        needed = [SUBJECT, TRIAL]
        if responses and model.n_options is not None:
            needed.append(CHOICE)
        if responses and model.rt:
            needed.append(RT)
        for col in needed:
            if col not in df:
                raise DataError(f"column {col!r} is missing (model {model.name!r} needs it)")
        if df[SUBJECT].isna().any():
            raise _where(df, df[SUBJECT].isna().to_numpy(), SUBJECT, "missing subject id")
        if len(df) == 0:
            raise DataError("the table has no rows")
        if isinstance(covariates, str):
            raise DataError(f"covariates must be a sequence of column names, not the string {covariates!r} "
                            f"(write ({covariates!r},))")
        covariates = tuple(covariates)
        for col in covariates:
            if col in RESERVED or col in model.requires or col in model.design_requires:
                role = "a reserved column" if col in RESERVED else f"data of model {model.name!r}"
                raise DataError(f"covariate {col!r}: the column is already read as {role}; copy it to a "
                                "column of another name to use it as a covariate")
            if col not in df:
                raise DataError(f"covariate column {col!r} is missing (columns: {list(df.columns)})")

        excluded = 0
        if EXCLUDE in df:
            flag = df[EXCLUDE]
            if flag.isna().any() or not set(pd.unique(flag)) <= {True, False, 0, 1}:
                bad = flag.isna() | ~flag.isin([True, False, 0, 1])
                raise _where(df, bad.to_numpy(), EXCLUDE, "must be True/False")
            flag = flag.astype(bool).to_numpy()
            excluded = int(flag.sum())
            kept = set(df.loc[~flag, SUBJECT])
            empty = ~df[SUBJECT].isin(kept).to_numpy()
            if empty.any():
                raise _where(df, empty, EXCLUDE, "subject has no valid trials (all excluded)")
            df = df.loc[~flag]

        trial = _numeric(df, TRIAL)
        if (trial != np.round(trial)).any():
            raise _where(df, trial != np.round(trial), TRIAL, "trial number must be an integer")
        dup = df.duplicated([SUBJECT, TRIAL], keep="first").to_numpy()
        if dup.any():
            raise _where(df, dup, TRIAL, "duplicated (subject, trial)")

        columns: dict[str, np.ndarray] = {}
        if responses and model.n_options is not None:
            choice = _numeric(df, CHOICE)
            bad = (choice != np.round(choice)) | (choice < 0) | (choice >= model.n_options)
            if bad.any():
                raise _where(
                    df, bad, CHOICE, f"choice code outside 0..{model.n_options - 1}"
                )
            columns[CHOICE] = choice.astype(np.int32)
        if responses and model.rt:
            rt = _numeric(df, RT)
            if (rt <= 0).any():
                raise _where(df, rt <= 0, RT, "response time must be > 0 seconds")
            if np.median(rt) > MS_MEDIAN:
                warnings.warn(f"column {RT!r}: median {np.median(rt):.4g}, which looks like milliseconds; "
                              f"cogfit reads response times in seconds: divide by 1000 "
                              f"(table[{RT!r}] / 1000)", UserWarning, stacklevel=2)
            columns[RT] = rt
        design_cols = [c for c in model.design_requires if c not in model.requires]
        if responses:   # fitting: design-only columns are optional (kept for posterior predictions)
            design_cols = [c for c in design_cols if c in df or _numbered(df, c)]
            vector_specs = list(model.requires) + design_cols + ([SOFT] if _numbered(df, SOFT) else [])
        else:           # a design: the simulator produces the outcome columns
            vector_specs = [c for c in model.requires if c not in model.outcomes] + design_cols
        numbered: dict[str, list[str]] = {}
        for name in vector_specs:
            parts = numbered[name] = _numbered(df, name)
            if name in df and not parts:
                columns[name] = _numeric(df, name)
                continue
            if not parts:
                raise DataError(
                    f"column {name!r} is missing (model {model.name!r} needs it, "
                    f"as {name!r} or numbered columns {name}_1, {name}_2, ...)"
                )
            columns[name] = np.stack([_numeric(df, c) for c in parts], axis=-1)
        _vectors_fit(model, columns, numbered)
        for col in covariates:
            columns[col] = _numeric(df, col)
        for name in [*model.probabilities, *([SOFT] if SOFT in columns else [])]:
            p = columns[name]
            parts = _numbered(df, name) or [name]
            for j, col in enumerate(parts):
                pj = p[..., j] if p.ndim == 2 else p
                bad = (pj < 0) | (pj > 1)
                if bad.any():
                    raise _where(df, bad, col, "probability outside [0, 1]")
            if p.ndim == 2:
                total = p.sum(axis=-1)
                bad = np.abs(total - 1.0) > _PROB_TOL
                if bad.any():
                    first = np.flatnonzero(bad)[0]
                    raise _where(
                        df, bad, parts[0],
                        f"probabilities {'+'.join(parts)} sum to {total[first]:.6g}, not 1",
                    )
        if SOFT in columns and model.n_options is not None and columns[SOFT].shape[-1] != model.n_options:
            raise DataError(
                f"columns {SOFT}_1..{SOFT}_{columns[SOFT].shape[-1]}: model {model.name!r} "
                f"has {model.n_options} options"
            )

        pop_code, pop_labels = _labels(df, POPULATION, populations, "all")
        cond_code, cond_labels = _labels(df, CONDITION, conditions, "all")

        # Pack: subjects in order of first appearance, trials sorted within subject.
        # pd.factorize numbers ids in order of first appearance and, unlike np.unique, never
        # compares them, so integer (human) and string (LLM) ids mix.
        s_idx, uniques = pd.factorize(df[SUBJECT], sort=False)
        subjects = tuple(x.item() if isinstance(x, np.generic) else x for x in uniques)
        _distinct_as_text(subjects)
        pop_per_subject = np.zeros(len(subjects), np.int32)
        pop_per_subject[s_idx] = pop_code
        mixed = pop_code != pop_per_subject[s_idx]
        if mixed.any():
            raise _where(df, mixed, POPULATION, "a subject must belong to one population")

        order = np.lexsort((trial, s_idx))
        s_sorted = s_idx[order]
        counts = np.bincount(s_sorted, minlength=len(subjects))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        S, T = len(subjects), int(counts.max())
        # Index of the source row for every (subject, slot); padded slots repeat the last row.
        src = np.empty((S, T), np.int64)
        slot = np.minimum(np.arange(T)[None, :], counts[:, None] - 1)
        src[:] = order[starts[:, None] + slot]
        mask = np.arange(T)[None, :] < counts[:, None]

        fields = {k: v[src] for k, v in columns.items()}
        fields["mask"] = mask
        trial_arr = np.where(mask, trial[src].astype(np.int64), -1)
        row_arr = np.asarray(df.index)[src]
        return cls(
            fields=Record(fields),
            subjects=subjects,
            population=pop_per_subject,
            populations=pop_labels,
            condition=cond_code[src],
            conditions=cond_labels,
            trial=trial_arr,
            row=row_arr,
            excluded=excluded,
            covariates=covariates,
        )

    def to_table(self) -> pd.DataFrame:
        """Back to a tidy table (real trials only), the inverse of :meth:`from_table`."""
        m = self.mask
        out = {
            SUBJECT: np.repeat(np.asarray(self.subjects, dtype=object), m.sum(1)),
            TRIAL: self.trial[m],
        }
        for k, v in self.fields.items():
            if k == "mask" or k in {design_field(p) for p in self.designs}:
                continue
            v = np.asarray(v)
            if v.ndim == 3:
                for j in range(v.shape[-1]):
                    out[f"{k}_{j + 1}"] = v[..., j][m]
            else:
                out[k] = v[m]
        if self.populations != ("all",):
            out[POPULATION] = self.subject_populations[:, None].repeat(m.shape[1], 1)[m]
        if self.conditions != ("all",):
            out[CONDITION] = np.asarray(self.conditions)[self.condition][m]
        return pd.DataFrame(out)
