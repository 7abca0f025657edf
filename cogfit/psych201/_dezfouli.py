"""Adapter: dezfouli2019, a two-armed bandit with food rewards (healthy, depressed, bipolar).

Dezfouli, Griffiths, Ramos, Dayan & Balleine (2019), Models that learn how humans learn: the
case of decision-making and its disorders, PLOS Comput Biol 15(6), e1006903.

Tidy columns (for the ``bandit_*`` learners; ``bandit_*_blocks`` restart at each block):
``choice`` (0 = the first option named in the participant's instructions "choose between two
options: L and R", 1 = the second), ``reward`` (1.0 food reward, 0.0 none), ``block`` (1..12),
``response`` (the key pressed), ``option_a`` / ``option_b`` (the two option names in the
instructions' order), ``population`` (the participant's ``diagnosis``: Healthy, Depression or
Bipolar). ``trial`` counts over the whole session (blocks lasted 40 s each, so their lengths
differ). The file has no response times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cogfit.psych201._adapter import Adapter, register

NAME = "dezfouli2019"


def _to_row(f: Mapping[str, str]) -> dict[str, Any]:
    a, b = f["name_1"], f["name_2"]
    if f["response"] not in (a, b):
        raise ValueError(f"response {f['response']!r} is neither option {a} nor {b}")
    return {
        "choice": int(f["response"] == b),
        "reward": 1.0 if f["outcome"] == "a" else 0.0,
        "block": int(f["block"]),
        "response": f["response"],
        "option_a": a,
        "option_b": b,
    }


def _from_row(r: Mapping[str, Any]) -> dict[str, str]:
    a, b = str(r["option_a"]), str(r["option_b"])
    if r["reward"] not in (0.0, 1.0):
        raise ValueError(f"reward {r['reward']!r} is neither 0 nor 1 (the transcript says a or no food reward)")
    return {
        "name_1": a,
        "name_2": b,
        "block": str(int(r["block"])),
        "response": (a, b)[int(r["choice"])],
        "outcome": "a" if r["reward"] == 1.0 else "no",
    }


INSTRUCTIONS = """In this task, you have to choose between two options: {name_1} and {name_2}.
Each choice is associated with a probability of earning a food reward.
If the choice is rewarded, the button you selected will turn green, if not rewarded, a grey circle will appear on the screen.
The task consists of 12 blocks, each lasting 40 seconds. You can complete as many trials as possible within each block.

"""

adapter = register(
    Adapter(
        name=NAME,
        trial=r"Block (?P<block>\d+): You pressed <<(?P<response>[^<>]*)>> and received (?P<outcome>a|no) food reward\.",
        trial_template="Block {block}: You pressed <<{response}>> and received {outcome} food reward.",
        to_row=_to_row,
        from_row=_from_row,
        instructions=INSTRUCTIONS,
        header=(r"choose between two options: (?P<name_1>\S+) and (?P<name_2>\S+)\.",),
        meta={"population": "diagnosis"},
        defaults={"option_a": "L", "option_b": "R", "block": 1},
    )
)
