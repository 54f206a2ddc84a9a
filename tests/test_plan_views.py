"""How the chat UI shows a plan and reads an edit of a step: one checklist whose summary is not repeated after the
answer's text, SQL as a formatted code block, the fine-tune explanation as a clean list, cost parts without empty
fields, the starters drawn from the workspace, and the edit form's fields read back into typed arguments."""
from __future__ import annotations

import pytest

from agent.channels.plan_views import cost_parts, explanation_markdown, form_fields, plan_markdown, read_fields
from agent.state import Plan, Step

SQL = "select region, count(*) as n from customers group by region"


def _plan() -> Plan:
    return Plan(summary="Running your SQL on the warehouse (read-only).", steps=[
        Step(id="s1", tool="run_sql", title="Run the SQL as typed", args={"sql": SQL, "limit": None},
             estimated_cost="reads at most 10,000 rows"),
        Step(id="s2", tool="create_derived_table", title="Create table `n_by_region`", depends_on=["s1"],
             args={"name": "n_by_region", "select_sql": SQL, "replace": False, "settings": {"max_steps": 5}},
             estimated_cost="Memory: about 170 MiB at its peak, of 16.8 GiB free:; Duration: about 13 min")])


def test_a_plan_reads_once_with_its_sql_as_a_code_block():
    text = plan_markdown(_plan(), ["s2"])
    assert text.startswith("**Plan** — Running your SQL on the warehouse (read-only).")
    # Said just before in the answer's text: the headline does not say it again.
    said = plan_markdown(_plan(), ["s2"], said="Running your SQL on the warehouse (read-only).")
    assert said.startswith("**Plan**\n") and "Running your SQL" not in said
    # Said as a list (a fine-tune's explanation is laid out so in the message before it): not said again either.
    steps = Plan(summary="Noted: dpo.\nMemory: 1 MiB:\n  - weights: 1 MiB\n\nIt waits.", steps=_plan().steps)
    assert "Noted" not in plan_markdown(steps, [], said="History…\n" + explanation_markdown(steps.summary))
    lines = text.splitlines()
    assert "- [ ] `s1` **Run the SQL as typed** — _read · reads at most 10,000 rows_" in lines
    assert lines.count("  ```sql") == 2 and "  SELECT" in lines and "  GROUP BY" in lines  # formatted, indented
    assert "  name `n_by_region` · replace no · settings `max_steps=5`" in lines
    assert "limit" not in text  # an argument left unset is not shown
    assert "free:;" not in text and "of 16.8 GiB free · Duration: about 13 min_ · **needs approval**" in text
    done = plan_markdown(_plan(), ["s2"], {"s1": True, "s2": False})
    assert "- [x] `s1`" in done and "- [!] `s2`" in done and "needs approval" not in done


def test_cost_parts_drop_empty_fields_and_dangling_colons():
    assert cost_parts("Memory: 170 MiB free:; ; Duration: 13 min") == ["Memory: 170 MiB free", "Duration: 13 min"]
    assert cost_parts("") == []


def test_the_finetune_explanation_becomes_a_clean_list():
    text = ("The plan:\nModel: tiny-qwen3 (qwen3).\nMemory: about 170 MiB at its peak, of 16.8 GiB free:\n"
            "  - model weights: 4 MiB\n  - gradients: 2 MiB\n  Trainable parameters: 551,680.\n"
            "Settings (any can be changed by name):\n  - method = full: small enough.\n\n"
            "Starting the job spends compute, so it waits for your approval.")
    md = explanation_markdown(text).splitlines()
    assert md[:2] == ["- **The plan:**", "- **Model:** tiny-qwen3 (qwen3)."]
    assert "- **Memory:** about 170 MiB at its peak, of 16.8 GiB free:" in md
    # Indented lines are items nested under their line: no text runs into the list.
    assert md[md.index("  - model weights: 4 MiB") + 2] == "  - Trainable parameters: 551,680."
    assert md[-2:] == ["", "Starting the job spends compute, so it waits for your approval."]
    plain = "Running your SQL on the warehouse (read-only)."
    assert explanation_markdown(plain) == plain  # a sentence is left as it is


STEP = Step(id="s1", tool="create_derived_table",
            args={"name": "orders_by_status", "select_sql": SQL, "replace": False, "limit": 10, "dialect": None,
                  "settings": {"max_steps": 5}, "columns": ["a", "b"]})


def test_the_edit_form_offers_every_argument_with_its_type():
    fields = {f["name"]: f for f in form_fields(STEP)}
    assert fields["name"] == {"name": "name", "label": "Name", "value": "orders_by_status", "hint": "",
                              "multiline": False}
    assert fields["select_sql"]["multiline"] and fields["select_sql"]["value"].startswith("SELECT\n")
    assert fields["replace"]["hint"] == "(true or false)" and fields["replace"]["value"] == "false"
    assert fields["limit"]["hint"] == "(a number)" and fields["dialect"]["value"] == ""
    assert fields["settings"]["value"] == '{"max_steps": 5}' and fields["settings"]["multiline"]


@pytest.mark.parametrize("submitted, changed", [
    ({"name": "orders_per_status"}, {"name": "orders_per_status"}),        # text as typed
    ({"name": "orders_by_status", "limit": "10"}, {}),                    # unchanged fields are no edit
    ({"limit": " 25 "}, {"limit": 25}),                                    # a number, spaces around
    ({"replace": "true"}, {"replace": True}),                              # a yes/no as JSON
    ({"settings": '{"max_steps": 9}'}, {"settings": {"max_steps": 9}}),    # a mapping
    ({"columns": '["a"]'}, {"columns": ["a"]}),                            # a list
    ({"dialect": "duckdb"}, {"dialect": "duckdb"}),                        # an unset argument given text
    ({"limit": ""}, {"limit": None}),                                      # a number emptied: not set
])
def test_a_submitted_form_reads_as_typed_changes(submitted, changed):
    assert read_fields(STEP, submitted) == changed


@pytest.mark.parametrize("submitted, said", [
    ({"limit": "ten"}, "`limit` must be a whole number"),
    ({"settings": "{max_steps: 9}"}, "`settings` must be a JSON object"),
    ({"replace": "maybe"}, "`replace` must be true or false"),
    ({"owner": "me"}, "step `s1` has no argument `owner`"),
])
def test_a_field_that_does_not_read_as_its_type_is_named(submitted, said):
    with pytest.raises(ValueError, match=said):
        read_fields(STEP, submitted)


def test_starters_come_from_the_workspace(demo_ws):
    from agent.channels.starters import starters
    from catalog.store import CatalogStore

    found = starters(demo_ws, CatalogStore(demo_ws).load())
    assert [s.message for s in found] == [
        "revenue by region last quarter", "who owns order_items?",
        "create a table of revenue by region named revenue_by_region",
        "fine-tune tiny-llama with dpo on reply_preferences"]


def test_the_plan_headline_follows_an_edit():
    from tools.registry import ToolRegistry

    plan = Plan(summary="I will create table `orders_by_status` from that query.", steps=[
        Step(id="s1", tool="create_derived_table", title="Create table `orders_by_status` (orders by status)",
             args={"name": "orders_by_status", "select_sql": "SELECT 1"})]).validated(ToolRegistry.discover())
    edited = plan.edited({"s1": {"name": "orders_per_status", "replace": True}}, ToolRegistry.discover())
    assert edited.summary == "I will create table `orders_per_status` from that query."
    assert edited.steps[0].title == "Create table `orders_per_status` (orders by status) (edited: replace=True)"
    assert "orders_by_status" not in plan_markdown(edited, ["s1"])


def test_prose_arguments_read_as_text_and_names_as_code():
    from agent.channels.plan_views import arg_text

    assert arg_text("orders_by_status") == "`orders_by_status`"
    assert arg_text("revenue by customer__region; from the question") == "“revenue by customer\\_\\_region; from the question”"
    assert arg_text({"max_steps": 5}) == "`max_steps=5`" and arg_text(True) == "yes"
