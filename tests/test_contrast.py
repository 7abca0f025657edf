"""Population differences (cogfit._contrast): exact against numpy on synthetic posteriors."""

import arviz as az
import numpy as np
import pytest
import xarray as xr

from cogfit._contrast import differences, population_values

POPS = ["Healthy", "Depression", "Bipolar"]
SUBJECTS = np.array(["s1", "s2", "s3", "s4", "s5", "s6"])
OF = np.array(["Healthy", "Healthy", "Depression", "Depression", "Bipolar", "Bipolar"])


def posterior(seed=0, chains=4, draws=300, conditions=None):
    rng = np.random.default_rng(seed)
    shape = (chains, draws, len(POPS)) + ((len(conditions),) if conditions else ())
    cdims = ("condition",) if conditions else ()
    group = rng.normal([0.2, 0.5, 0.9][: len(POPS)], 0.1, shape[:3])
    if conditions:
        group = group[..., None] + np.arange(len(conditions))
    subj = rng.uniform(0, 1, (chains, draws, len(SUBJECTS)) + shape[3:])
    coords = dict(population=POPS, subject=SUBJECTS, **({"condition": conditions} if conditions else {}))
    return xr.Dataset({"alpha_group": (("chain", "draw", "population") + cdims, group),
                       "alpha": (("chain", "draw", "subject") + cdims, subj)}, coords=coords)


def test_group_differences_are_every_later_population_minus_an_earlier_one():
    post = posterior()
    df = differences(post, ["alpha"], SUBJECTS, OF, POPS, prob=0.8)
    assert list(df.contrast) == ["Depression - Healthy", "Bipolar - Healthy", "Bipolar - Depression"]
    assert "condition" not in df.columns
    g = post["alpha_group"].values
    for row in df.itertuples():
        d = g[..., POPS.index(row.b)] - g[..., POPS.index(row.a)]
        assert row.mean == pytest.approx(d.mean()) and row.sd == pytest.approx(d.std())
        assert (row.lo, row.hi) == pytest.approx(tuple(np.quantile(d, [0.1, 0.9])))
        assert row.p_positive == pytest.approx((d > 0).mean())
        assert row.r_hat == pytest.approx(float(az.rhat(d)))
        assert row.ess_bulk == pytest.approx(float(az.ess(d, method="bulk")))


def test_reference_compares_each_population_with_it():
    post = posterior()
    all_pairs = differences(post, ["alpha"], SUBJECTS, OF, POPS)
    ref = differences(post, ["alpha"], SUBJECTS, OF, POPS, reference="Bipolar")
    assert list(ref.contrast) == ["Healthy - Bipolar", "Depression - Bipolar"]
    flipped = all_pairs.set_index("contrast").loc["Bipolar - Healthy"]
    assert ref.iloc[0]["mean"] == pytest.approx(-flipped["mean"])
    assert ref.iloc[0]["p_positive"] == pytest.approx(1 - flipped["p_positive"])
    assert ref.iloc[0]["r_hat"] == pytest.approx(flipped["r_hat"])


def test_members_average_each_populations_subjects_and_can_leave_some_out():
    post = posterior()
    a = post["alpha"].values
    vals = population_values(post, "alpha", OF, POPS, summary="members")
    assert vals.dims == ("chain", "draw", "population")
    assert np.allclose(vals.sel(population="Depression"), a[..., 2:4].mean(-1))
    df = differences(post, ["alpha"], SUBJECTS, OF, POPS, summary="members", exclude=["s6"])
    row = df.set_index("contrast").loc["Bipolar - Healthy"]
    assert row["mean"] == pytest.approx((a[..., 4] - a[..., 0:2].mean(-1)).mean())
    with pytest.raises(ValueError, match=r"Bipolar.*no members"):
        differences(post, ["alpha"], SUBJECTS, OF, POPS, summary="members", exclude=["s5", "s6"])


def test_conditions_give_a_row_per_condition():
    post = posterior(conditions=["easy", "hard"])
    df = differences(post, ["alpha"], SUBJECTS, OF, POPS)
    assert list(df.columns[:2]) == ["param", "condition"] and len(df) == 6
    hard = df[(df.condition == "hard") & (df.contrast == "Bipolar - Healthy")].iloc[0]
    g = post["alpha_group"].sel(condition="hard").values
    assert hard["mean"] == pytest.approx((g[..., 2] - g[..., 0]).mean())
    members = differences(post, ["alpha"], SUBJECTS, OF, POPS, summary="members")
    assert len(members) == 6


def test_one_chain_has_no_rhat():
    df = differences(posterior(chains=1), ["alpha"], SUBJECTS, OF, POPS)
    assert df.r_hat.isna().all() and (df.ess_bulk > 0).all()


@pytest.mark.parametrize("kw, message", [
    (dict(exclude=["s9"]), r"not in the fit: \['s9'\]"),
    (dict(exclude=["s1"]), "summary='members'"),
    (dict(reference="Mania"), "'Mania' is not a population"),
    (dict(summary="median"), "summary must be one of"),
])
def test_bad_requests_are_clear_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        differences(posterior(), ["alpha"], SUBJECTS, OF, POPS, **kw)


def test_no_pooling_points_to_members_and_one_population_is_an_error():
    post = posterior().drop_vars("alpha_group")
    with pytest.raises(ValueError, match="pooling='none'.*summary='members'"):
        differences(post, ["alpha"], SUBJECTS, OF, POPS)
    assert len(differences(post, ["alpha"], SUBJECTS, OF, POPS, summary="members")) == 3
    with pytest.raises(ValueError, match="at least two populations"):
        differences(posterior(), ["alpha"], SUBJECTS, np.full(6, "Healthy"), ["Healthy"])
