"""lm-eval hook for `downstream_math`: math-verify equivalence of the generated final answer."""

from rlrewrite.reward.answers import matches_gold, parse_gold


def process_results(doc: dict, results: list[str]) -> dict:
    return {"math_equiv": float(matches_gold(results[0], parse_gold(doc["answer"])))}
