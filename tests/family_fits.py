"""Small SVI fits of one model per family, cached per test process (shared by the comparison and
posterior-predictive tests): 6 subjects x 60 trials in two populations, simulated from a typical
member (each parameter at its prior's centre; loss aversion 2.5 where the model has it)."""

import functools
import warnings

import cogfit

SVI = cogfit.SVI(steps=400, draws=200, learning_rate=0.02)


def truth(model) -> dict:
    out = {p.name: float(p.transform.forward(0.0)) for p in model.params}
    if "lam" in out:
        out["lam"] = 2.5
    return out


@functools.lru_cache(maxsize=None)
def table(name: str, n_subjects: int = 6, n_trials: int = 60):
    model = cogfit.models.get(name)
    design = cogfit.random_design(model, n_subjects=n_subjects, n_trials=n_trials, seed=0,
                                  populations=["human", "llm"])
    return cogfit.simulate(model, design, truth(model), seed=1)


@functools.lru_cache(maxsize=None)
def family_fit(simulated: str, fitted: str | None = None):
    """``fitted`` (default: ``simulated``) fitted to data simulated from ``simulated``."""
    model = cogfit.models.get(fitted or simulated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cogfit.fit(model, cogfit.TrialData.from_table(table(simulated), model), method=SVI, seed=2,
                          progress=False)
