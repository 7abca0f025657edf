"""The named data sets: where each file comes from, its checksum, license, citation and reader."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

PSYCH201_COMMIT = "c63dea18897393b706227b50024b27fa8d8907d8"
PSYCH201_LICENSE = "Apache-2.0 (Psych-201, github.com/marcelbinz/Psych-201)"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One named data set.

    Attributes
    ----------
    name
        Registry name, ``"<collection>/<experiment>"``.
    path
        Relative path of the file in the cache and in a mirror folder.
    url
        Upstream address of the file (pinned to a commit).
    sha256
        Hex SHA-256 of the file; every copy is checked against it.
    license, citation
        License of the file and the paper to cite.
    description
        One line: what the experiment is and what table ``load`` returns.
    model
        The cogfit model the table is shaped for (``cogfit.models.get(model)``).
    reader
        ``path -> tidy trial table``.
    """

    name: str
    path: str
    url: str
    sha256: str
    license: str
    citation: str
    description: str
    model: str
    reader: Callable[[Path], pd.DataFrame]


_DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add ``dataset`` to the registry and return it."""
    if dataset.name in _DATASETS and _DATASETS[dataset.name] != dataset:
        raise ValueError(f"a data set named {dataset.name!r} is already registered")
    _DATASETS[dataset.name] = dataset
    return dataset


def get(name: str) -> Dataset:
    """The registered data set ``name``."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of all registered data sets, sorted."""
    return sorted(_DATASETS)


def _psych201(experiment: str, sha256: str, citation: str, description: str, model: str) -> Dataset:
    from cogfit import psych201

    def reader(path: Path) -> pd.DataFrame:
        return psych201.read(path, experiment)

    path = f"psych201/{experiment}/prompts.jsonl.zip"
    return register(
        Dataset(
            name=f"psych201/{experiment}",
            path=path,
            url=f"https://github.com/marcelbinz/Psych-201/raw/{PSYCH201_COMMIT}/{experiment}/prompts.jsonl.zip",
            sha256=sha256,
            license=PSYCH201_LICENSE,
            citation=citation,
            description=description,
            model=model,
            reader=reader,
        )
    )


_psych201(
    "spektor2024lossaversion",
    "095b048dd3c88daa41b3838f3308dfcb86bf8ac2d45cc6fa5b5aed185e83ef6a",
    "Spektor, M. S., Kellen, D., Rieskamp, J., & Klauer, K. C. (2024). Absolute and relative "
    "stability of loss aversion across contexts. Journal of Experimental Psychology: General, "
    "153(2), 454-472. https://doi.org/10.1037/xge0001513",
    "282 participants, 73,250 choices between two 50/50 two-outcome lotteries in two sessions "
    "(sub-experiments exp1-exp3); deliberation times in s",
    # 50/50 lotteries leave probability weighting unidentified; 53 participants press one
    # key on > 80% of trials, hence the side bias
    "cpt_linear_bias",
)
_psych201(
    "dezfouli2019",
    "b012167a8fb2415d408c1496c91d077a594b5c3c8f8709bc2069a828d4b224ce",
    "Dezfouli, A., Griffiths, K., Ramos, F., Dayan, P., & Balleine, B. W. (2019). Models that "
    "learn how humans learn: The case of decision-making and its disorders. PLOS Computational "
    "Biology, 15(6), e1006903. https://doi.org/10.1371/journal.pcbi.1006903",
    "101 participants (population = Healthy / Depression / Bipolar), 132,251 choices in a "
    "two-armed bandit with food rewards over 12 blocks",
    "bandit_rw_blocks",
)
_psych201(
    "guenther2020LDT",
    "bac7c8db2b8de1840714d25f8e934e86a885d078423a7dbfc64d3d81e946235c",
    "Günther, F., & Marelli, M. (2020). Trying to make it work: Compositional effects in the "
    "processing of compound \"nonwords\". Quarterly Journal of Experimental Psychology, 73(7), "
    "1082-1091. https://doi.org/10.1177/1747021820902019",
    "146 participants, 75,870 lexical decisions on compound words and nonwords with RTs in s; "
    "condition = lexicality derived from the majority response per item",
    # some participants make fast guesses: an estimated contaminant share (see models/ddm.py)
    "ddm_lapse",
)
