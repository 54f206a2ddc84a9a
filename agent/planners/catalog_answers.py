"""The help text and examples drawn from the workspace's own metrics, dimensions and values; the answers from
the catalog's metadata (owners, definitions, PII, lineage) live in `catalog/metadata_answers.py`.

It reads the loaded `Catalog` only; it never reads data rows and never shows values of PII columns.
"""
from __future__ import annotations

from catalog.metadata import Catalog
from agent.planners.semantic_names import Reachable, SemanticNames, safe_reachable


def help_text(catalog: Catalog, names: SemanticNames, values: dict[tuple[str, str], list[str]]) -> str:
    """What the offline planner can do, with examples from this workspace."""
    metrics = [m.name for m in catalog.semantic.metrics]
    tables = sorted(catalog.tables)
    lines = ["I answer questions about this workspace without an LLM. I understand:"]
    if metrics:
        m = metrics[0]
        reach = safe_reachable(names, [m])
        dim_word = _example_dimension(reach, values)
        value = next((vs[0] for k, vs in sorted(values.items())
                      if reach and k in reach.dimensions and 2 <= len(vs) <= 12), None)
        ranked = example_ranked(names, reach)
        spoken = m.replace("_", " ")
        examples = [f"{spoken}" + (f" by {dim_word}" if dim_word else "") + " last quarter"]
        if ranked:
            examples.append(f"top 5 {ranked} by {spoken}")
        if value:
            examples.append(f"{spoken} in {value} by month")
        examples += [f"{spoken} since March", f"{spoken} in Q3 2025", f"{spoken} last 30 days"]
        lines.append(f"- metric questions on {len(metrics)} metrics (" + ", ".join(f"`{x}`" for x in metrics[:8])
                     + (", …" if len(metrics) > 8 else "") + "), by their names, labels and glossary synonyms, "
                     "e.g. " + ", ".join(f"\"{e}\"" for e in examples) + ";")
        lines.append("- follow-ups on the last answer: \"now split that by month\""
                     + (f", \"only for {value}\"" if value else "")
                     + (f", \"what about {metrics[1].replace('_', ' ')}?\"" if len(metrics) > 1 else "") + ";")
        lines.append("- derived tables (after your approval): \"create a table of " + spoken
                     + (f" by {dim_word}" if dim_word else "") + " by month\";")
    else:
        lines.append("- metric questions, once metrics are defined in catalog/semantic/*.yml;")
    example_table = tables[0] if tables else "a_table"
    lines.append(f"- the catalog: \"list tables\", \"which metrics are defined?\", \"describe {example_table}\", "
                 f"\"who owns {example_table}?\", \"which columns are PII?\", \"where is … stored?\", "
                 "\"where does table.column come from?\";")
    lines.append("- SQL typed directly, e.g. `SELECT count(*) FROM " + example_table + "` (read-only).")
    lines.append("Configure an LLM (`[llm] model` in lathe.toml or LATHE_MODEL) for questions beyond these.")
    return "\n".join(lines)


def _example_dimension(reach: Reachable | None, values: dict[tuple[str, str], list[str]]) -> str | None:
    """A dimension that makes a readable example: a handful of values (a region, not a product name)."""
    if reach is None or not reach.dimensions:
        return None
    best = min(reach.dimensions.items(), key=lambda kv: (abs(len(values.get(kv[0], [])) - 4), kv[1]))
    return best[1].split("__")[-1].replace("_", " ")


def example_ranked(names: SemanticNames, reach: Reachable | None) -> str | None:
    """Things to rank, named as their model is ("products"), when they have a name to show."""
    if reach is None:
        return None
    for entity in sorted(reach.entities):
        grouped = names.group_name_for_entity(reach, entity)
        model = names.entity_model(entity)
        if grouped and grouped != entity and model:
            return model.replace("_", " ")
    return None


def short_examples(catalog: Catalog, names: SemanticNames, values: dict[tuple[str, str], list[str]]) -> str:
    """One line of examples for a reply that could not answer."""
    metrics = [m.name for m in catalog.semantic.metrics]
    if not metrics:
        return "No metrics are defined yet (catalog/semantic/*.yml); ask \"list tables\" or type SQL."
    dim = _example_dimension(safe_reachable(names, [metrics[0]]), values)
    spoken = metrics[0].replace("_", " ")
    example = f"{spoken} by {dim} last quarter" if dim else f"{spoken} by month"
    return f"Try, for example, \"{example}\", \"list metrics\" or \"help\"."
