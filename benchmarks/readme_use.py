"""The README's "Use" example, run exactly as written: the first code a new user copies.

    python benchmarks/readme_use.py

Runs the ``python`` block of README.md's "Use" section in a temporary folder (it saves
``fit.nc``) and prints its wall-clock and CPU seconds (data loading and compilation included, as
a user meets them; CPU time tells what a busy machine hides), the fit's max R-hat, min bulk ESS
and divergences. Needs the spektor data (the
cache, a download, or ``COGFIT_DATA_MIRROR``).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def use_block(text: str | None = None) -> str:
    """The ``python`` code block of the README's "Use" section."""
    text = README.read_text() if text is None else text
    section = text.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def main() -> None:
    code = use_block()
    namespace: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        here = os.getcwd()
        os.chdir(folder)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            exec(compile(code, f"{README} (Use)", "exec"), namespace)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            os.chdir(here)
    fit = namespace["fit"]
    check = fit.check()
    print(f"README Use example: {seconds:.0f} s wall-clock, {cpu:.0f} s CPU (all threads), {fit}")
    print(f"max R-hat {check['max_rhat']:.4f}, min bulk ESS {check['min_ess_bulk']:.0f}, "
          f"{check['divergences']} divergences, ok={check['ok']}")


if __name__ == "__main__":
    main()
