"""`import cogfit` and the `cogfit` command load JAX, NumPyro and ArviZ only when first needed."""

import subprocess
import sys

import cogfit

HEAVY = ("jax", "numpyro", "arviz", "pandas", "xarray", "matplotlib")


def test_import_and_help_load_no_heavy_package():
    code = ("import sys, contextlib, io\nimport cogfit, cogfit.cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cogfit.cli.main(['--help'])\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    for name in cogfit.__all__:
        assert getattr(cogfit, name) is not None
    assert callable(cogfit.compare) and cogfit.comparison.compare is cogfit.compare
    assert set(cogfit.__all__) <= set(dir(cogfit))
    try:
        cogfit.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
