"""Step-by-step expert solutions for reasoning-gym families that ship only a final answer.

Each renderer turns a generated item into a terse worked solution in GSM8K's format (one
computation a line, `#### N` last), so those families can serve as downstream data with the
paper's shape: an expert solution whose style differs from the model's own, and an answer a
checker can verify. A renderer recomputes the answer and refuses an item whose result
disagrees with reasoning-gym's. A family may also name each item's template (its structure
without the numbers), which the splitter keeps out of training when test uses it.
"""

from __future__ import annotations

from collections.abc import Callable

from rlrewrite.jsonl import DataError


def _check(name: str, index: int, computed: int, gold: str) -> None:
    if str(computed) != str(gold).strip():
        raise DataError(f"reasoning-gym '{name}' item {index}: rendered solution gives "
                        f"{computed}, the dataset's answer is {gold}")


def chain_sum(item: dict) -> str:
    """`15 - 43 - 75` -> `15 - 43 = -28` / `-28 - 75 = -103` / `#### -103`."""
    tokens = item["metadata"]["expression"].split()
    total, lines = int(tokens[0]), []
    if len(tokens) == 1:
        lines.append(f"{total}")
    for op, operand in zip(tokens[1::2], tokens[2::2]):
        value = int(operand)
        result = total + value if op == "+" else total - value
        lines.append(f"{total} {op} {value} = {result}")
        total = result
    _check("chain_sum", item["metadata"]["source_index"], total, item["answer"])
    return "\n".join(lines + [f"#### {total}"])


def leg_counting(item: dict) -> str:
    """One product per animal (count x legs each), then their sum."""
    from reasoning_gym.arithmetic.leg_counting import ANIMALS

    lines, products = [], []
    for animal, count in item["metadata"]["animals"].items():
        legs = ANIMALS[animal]
        products.append(count * legs)
        lines.append(f"{animal}: {count} x {legs} legs = {count * legs}")
    total = sum(products)
    lines.append(f"Total: {' + '.join(map(str, products))} = {total}")
    _check("leg_counting", item["metadata"]["source_index"], total, item["answer"])
    return "\n".join(lines + [f"#### {total}"])


def leg_counting_template(item: dict) -> str:
    """The animals asked about, without their counts: a test item whose combination of animals
    training never saw asks for the skill (legs per animal, products, a sum), not recall."""
    return "+".join(sorted(item["metadata"]["animals"]))


RENDERERS: dict[str, Callable[[dict], str]] = {"chain_sum": chain_sum,
                                               "leg_counting": leg_counting}
# families whose items share a structure that only their numbers vary, as GSM-Symbolic's templates
TEMPLATES: dict[str, Callable[[dict], str]] = {"leg_counting": leg_counting_template}
