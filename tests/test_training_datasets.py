"""Training datasets from the catalog: format detection and column mapping, bad rows with their numbers and
reasons, refusal before compute, split / de-duplication / PII scrubbing / hash, the demo's tables, the real
GSM8K and HH-RLHF files, and TRL taking the prepared rows for a real step."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from core.workspace import Workspace
from runtimes.training.datasets.formats import DatasetFormat, detect_mapping
from runtimes.training.datasets.preparation import DatasetSpec, plan_dataset, prepare, prepare_dataset
from runtimes.training.datasets.validation import DatasetRefused, check_rows, refuse_if_too_many
from tests.conftest import SHARED_DATA

HH = "\n\nHuman: {q}\n\nAssistant: {a}"
MSGS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


@pytest.mark.parametrize(("columns", "row", "fmt", "mapping"), [
    (["id", "messages"], [1, MSGS], "messages", {"messages": "messages"}),
    (["chat"], [json.dumps(MSGS)], "messages", {"messages": "chat"}),
    (["conversations"], [[{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]], "sharegpt",
     {"conversations": "conversations"}),
    (["prompt", "completion"], ["Hi", "Hello"], "prompt_completion", {"prompt": "prompt", "completion": "completion"}),
    (["ticket_body", "reply"], ["My order is late", "Sorry, it ships today"], "prompt_completion",
     {"prompt": "ticket_body", "completion": "reply"}),
    (["pair_id", "prompt", "chosen", "rejected"], [1, "Hi", "Hello, how can I help?", "What"], "preference",
     {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}),
    (["instruction", "input", "output"], ["Add", "2 and 3", "5"], "alpaca",
     {"instruction": "instruction", "output": "output", "input": "input"}),
    (["chosen", "rejected"], [HH.format(q="Hi", a="Hello"), HH.format(q="Hi", a="Go away")], "hh_rlhf",
     {"chosen": "chosen", "rejected": "rejected"}),
    (["question", "answer"], ["1+1?", "One and one.\n#### 2"], "question_answer", {"question": "question", "answer": "answer"}),
    (["question", "answer"], ["Why?", "Because."], "prompt_completion", {"prompt": "question", "completion": "answer"}),
    (["system_prompt", "prompt", "response"], ["Be kind", "Hi", "Hello"], "prompt_completion",
     {"prompt": "prompt", "completion": "response", "system": "system_prompt"}),
])
def test_detects_format_and_mapping(columns, row, fmt, mapping):
    found = detect_mapping(columns, [row] * 3)
    assert found.format.value == fmt and found.columns == mapping and found.reasons


def test_mapping_overrides_and_clear_refusals():
    cols, rows = ["body", "reply", "score"], [["Late order", "Ships today", 5]]
    m = detect_mapping(cols, rows, override={"prompt": "body", "completion": "reply"})
    assert m.format == DatasetFormat.prompt_completion and m.describe() == "prompt_completion: prompt ← body, completion ← reply"
    assert m.reasons == ["mapping given by the user"]
    with pytest.raises(UserError, match=r"no column `replly`; did you mean `reply`\? \(mapped to `completion`\)"):
        detect_mapping(cols, rows, override={"prompt": "body", "completion": "replly"})
    with pytest.raises(UserError, match="fit no format"):
        detect_mapping(cols, rows, override={"prompt": "body", "score": "score"})
    with pytest.raises(UserError, match=r"the preference format needs a column for chosen, rejected"):
        detect_mapping(cols, rows, format=DatasetFormat.preference, override={"prompt": "body"})
    with pytest.raises(UserError, match=r"could not match the columns \(id, score\) to a training format.*prompt=COLUMN"):
        detect_mapping(["id", "score"], [[1, 2]])


def test_every_bad_row_is_reported_with_its_number_and_reason():
    cols = ["prompt", "chosen", "rejected"]
    rows = [["Hi", "Hello", "Go"], ["", "a", "b"], ["Hi", 7, "b"], ["Hi", "same", "same"], ["x" * 50, "a", "b"],
            ["Hi", None, "b"], ["Hi", "Hello", "Go"]]
    m = detect_mapping(cols, rows)
    good, bad = check_rows(m, "dpo", cols, rows, max_chars=40)
    assert [n for n, _ in good] == [1, 7]
    assert [str(b) for b in bad] == [
        "row 2: `prompt` (prompt) is empty", "row 3: `chosen` (chosen) is a int, not text",
        "row 4: chosen == rejected: the pair teaches no preference",
        "row 5: too long: 52 characters, over the limit of 40", "row 6: `chosen` (chosen) is empty"]

    conv = ["messages"]
    rows = [[MSGS], [[{"role": "robot", "content": "x"}]], [[{"role": "user", "content": "Hi"}]], ["not json"],
            [[{"role": "user", "content": 3}]]]
    _, bad = check_rows(detect_mapping(conv, rows[:1]), "sft", conv, rows, max_chars=1000)
    assert [str(b) for b in bad] == [
        "row 2: message 1 of `messages` has role `robot`, not system, user or assistant",
        "row 3: the conversation has no assistant turn to learn from",
        "row 4: `messages` is text that is not a JSON list of messages",
        "row 5: message 1 of `messages` has int content, not text"]

    hh = ["chosen", "rejected"]
    rows = [[HH.format(q="Hi", a="Yes"), HH.format(q="Hi", a="No")], ["Just text", "Other text"],
            [HH.format(q="Hi", a="Yes"), HH.format(q="Hello", a="No")], [HH.format(q="Hi", a=""), HH.format(q="Hi", a="No")]]
    _, bad = check_rows(detect_mapping(hh, rows[:1]), "dpo", hh, rows, max_chars=1000)
    assert [str(b) for b in bad] == [
        "row 2: unparseable chosen transcript: it does not start with `Human:` turns (`\\n\\nHuman: … \\n\\nAssistant: …`)",
        "row 3: the chosen and rejected transcripts differ before their last reply, so they share no prompt",
        "row 4: the chosen transcript's last Assistant reply is empty"]

    qa = ["question", "answer"]
    rows = [["1+1?", "#### 2"], ["Essay?", "x " * 80 + "(no final answer)"]]
    _, bad = check_rows(detect_mapping(qa, rows), "rlvr", qa, rows, max_chars=1000)
    assert [b.row for b in bad] == [2] and "no verifiable final answer" in bad[0].reason


def test_too_many_bad_rows_are_refused_and_techniques_must_fit_the_data():
    from runtimes.training.datasets.row_problems import BadRow

    refuse_if_too_many([BadRow(3, "x")], 20, 0.05)  # 5 % is allowed
    with pytest.raises(DatasetRefused, match=r"2 of 20 rows \(10.0%\) are bad, over the 5% allowed.*row 3: x; row 9: y"):
        refuse_if_too_many([BadRow(3, "x"), BadRow(9, "y")], 20, 0.05)
    with pytest.raises(DatasetRefused, match="1 of 1 rows"):
        refuse_if_too_many([BadRow(1, "x")], 1, 1.0)
    pc = detect_mapping(["prompt", "completion"], [["a", "b"]])
    with pytest.raises(UserError, match="DPO learns from preference pairs.*this dataset is prompt_completion.*train SFT"):
        check_rows(pc, "dpo", ["prompt", "completion"], [["a", "b"]], max_chars=100)
    with pytest.raises(UserError, match="RLVR needs questions with a verifiable answer"):
        check_rows(pc, "rlvr", ["prompt", "completion"], [["a", "b"]], max_chars=100)


def _import_rows(ws: Workspace, tmp_path: Path, name: str, rows: list[dict]) -> None:
    f = tmp_path / f"{name}.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_paths(ws, [f])


def test_plan_refuses_before_compute_and_prepare_splits_dedups_and_hashes(workspace, tmp_path):
    rows = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships today."} for i in range(40)]
    rows += [rows[0], rows[1], {"prompt": "", "completion": "orphan"}]
    _import_rows(workspace, tmp_path, "demos", rows)

    plan = plan_dataset(workspace, DatasetSpec(table="demos", technique="sft", max_bad_fraction=0.05))
    assert plan.rows_read == 43 and [str(b) for b in plan.bad_rows] == ["row 43: `prompt` (prompt) is empty"]
    assert plan.sql == "SELECT * FROM demos" and plan.tables == ["demos"]
    assert "43 rows from demos; prompt_completion: prompt ← prompt, completion ← completion, 1 bad rows" in plan.describe()
    ds = prepare(plan)
    assert ds.duplicates_removed == 2 and len(ds.train) + len(ds.eval) == 40 and len(ds.eval) == 4
    assert ds.train.column_names == ["prompt", "completion"]
    assert ds.train[0]["completion"] == [{"role": "assistant", "content": "Order 0 ships today."}] or \
        ds.eval[0]["completion"][0]["role"] == "assistant"
    again = prepare_dataset(workspace, DatasetSpec(table="demos", technique="sft"))
    assert again.content_hash == ds.content_hash and again.train["prompt"] == ds.train["prompt"]
    other_seed = prepare_dataset(workspace, DatasetSpec(table="demos", technique="sft", seed=7))
    assert other_seed.content_hash == ds.content_hash and other_seed.eval["prompt"] != ds.eval["prompt"]
    sub = prepare_dataset(workspace, DatasetSpec(sql="SELECT * FROM demos WHERE prompt <> 'Where is order 3?'",
                                                 technique="sft", eval_fraction=0))
    assert sub.content_hash != ds.content_hash and sub.eval is None and len(sub.train) == 39
    assert sub.summary()["sql"] == "SELECT * FROM demos WHERE prompt <> 'Where is order 3?'"
    saved = ds.save(tmp_path / "prepared")
    assert json.loads((saved / "dataset.json").read_text())["content_hash"] == ds.content_hash
    assert len((saved / "train.jsonl").read_text().splitlines()) == len(ds.train)

    with pytest.raises(DatasetRefused, match=r"1 of 43 rows \(2.3%\) are bad, over the 1% allowed.*row 43"):
        plan_dataset(workspace, DatasetSpec(table="demos", technique="sft", max_bad_fraction=0.01))
    with pytest.raises(UserError, match="^dataset: give exactly one of `table` and `sql`: the rows come from exactly "
                                        "one of a catalog table and a SQL query$"):
        DatasetSpec.parse({"technique": "sft"})
    with pytest.raises(UserError, match="^dataset: `eval_fraction`: Input should be less than 1$"):
        DatasetSpec.parse({"table": "demos", "technique": "sft", "eval_fraction": 1.5})
    with pytest.raises(UserError, match="^dataset: `technique`: Input should be 'sft', 'dpo', 'rlvr' or 'rlaif'$"):
        DatasetSpec.parse({"table": "demos", "technique": "ppo"})
    with pytest.raises(UserError, match="is not allowed|only read statements|refused|not a read"):
        plan_dataset(workspace, DatasetSpec(sql="DELETE FROM demos", technique="sft"))
    assert plan_dataset(workspace, DatasetSpec(table="demos", technique="sft")).rows_read == 43  # nothing was deleted


def test_tables_read_leaves_out_common_table_expressions():
    from runtimes.training.datasets.sources import tables_read

    sql = "WITH recent AS (SELECT * FROM tickets) SELECT * FROM recent JOIN replies USING (ticket_id), tickets"
    assert tables_read(sql) == ["replies", "tickets"]


def test_a_result_cut_by_the_row_limit_is_refused(workspace, tmp_path):
    _import_rows(workspace, tmp_path, "pairs", [{"prompt": f"p{i}", "completion": "c"} for i in range(8)])
    workspace.settings_path.write_text('[sql]\nrow_limit = 5\n', encoding="utf-8")
    limited = Workspace(workspace.root)
    with pytest.raises(UserError, match=r"more rows than the workspace's row limit \(5\); raise `row_limit`"):
        plan_dataset(limited, DatasetSpec(table="pairs", technique="sft"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from catalog.workspace_setup import init_workspace

    ws = Workspace(tmp_path_factory.mktemp("demo") / "ws")
    init_workspace(ws, demo=True, scale=0.05)
    return ws


def test_demo_preferences_and_tickets_prepare(demo):
    dpo = prepare_dataset(demo, DatasetSpec(table="reply_preferences", technique="dpo"))
    assert dpo.mapping.columns == {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    assert dpo.train.column_names == ["prompt", "chosen", "rejected"] and not dpo.bad_rows
    assert len(dpo.train) + len(dpo.eval) == 50
    row = dpo.train[0]
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert row["chosen"] != row["rejected"]

    sql = ("SELECT t.body AS prompt, r.body AS reply FROM support_tickets t JOIN ticket_replies r "
           "ON r.ticket_id = t.ticket_id WHERE r.quality_score >= 4")
    sft = prepare_dataset(demo, DatasetSpec(sql=sql, technique="sft"))
    assert sft.mapping.columns == {"prompt": "prompt", "completion": "reply"}
    assert sft.tables == ["support_tickets", "ticket_replies"] and sft.summary()["sql"].startswith("SELECT t.body")

    # PII scrubbing: the customers' and agents' names in the ticket text become [name].
    from catalog.warehouse import connect_reader

    with connect_reader(demo) as con:
        firsts = {r[0].split()[0] for r in con.execute("SELECT full_name FROM customers UNION "
                                                       "SELECT agent_name FROM support_agents").fetchall()}
    def names_in(ds):
        text = json.dumps(ds.train.to_list() + ds.eval.to_list(), ensure_ascii=False)
        return {n for n in firsts if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)}

    assert names_in(sft)  # the tickets do greet people by name
    scrubbed = prepare_dataset(demo, DatasetSpec(sql=sql, technique="sft", scrub_pii=True,
                                                 pii_tables=["customers", "support_agents"]))
    assert not names_in(scrubbed) and scrubbed.pii_replacements > len(scrubbed.train)
    assert "[name]" in scrubbed.train[0]["completion"][0]["content"]
    assert scrubbed.pii_columns == ["customers.full_name", "customers.email", "customers.phone",
                                    "support_agents.agent_name"]
    assert scrubbed.content_hash != sft.content_hash

    # By default the scrubbed columns are those of the tables the query reads.
    own = prepare_dataset(demo, DatasetSpec(
        sql="SELECT 'Please e-mail ' || email || ' about the order' AS prompt, 'Done.' AS completion "
            "FROM customers ORDER BY customer_id LIMIT 20", technique="sft", scrub_pii=True, eval_fraction=0))
    assert {r["prompt"][0]["content"] for r in own.train} == {"Please e-mail [email] about the order"}
    with pytest.raises(UserError, match="no catalog table `custommers`; did you mean `customers`"):
        prepare_dataset(demo, DatasetSpec(table="reply_preferences", technique="dpo", scrub_pii=True,
                                          pii_tables=["custommers"]))


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared real data sets live in ../shared/data beside the project")
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from runtimes.training.datasets.shared_data import import_gsm8k, import_hh_rlhf

    _shared("gsm8k_test.jsonl"), _shared("hh_rlhf_harmless_base_test.jsonl.gz")
    ws = Workspace(tmp_path_factory.mktemp("shared") / "ws")
    ws.create()
    assert import_gsm8k(ws).tables[0].rows == 1319
    assert import_hh_rlhf(ws).tables[0].rows == 2312
    return ws


def test_gsm8k_imports_and_prepares_for_sft_and_rlvr(shared):
    from catalog.store import CatalogStore

    entry = CatalogStore(shared).load_table("gsm8k")
    assert entry.source == str((SHARED_DATA / "gsm8k_test.jsonl").resolve()) and "#### n" in entry.description
    sft = prepare_dataset(shared, DatasetSpec(table="gsm8k", technique="sft"))
    assert sft.mapping.format == DatasetFormat.question_answer and sft.train.column_names == ["prompt", "completion"]
    assert len(sft.train) + len(sft.eval) == 1319 and len(sft.eval) == 132 and not sft.bad_rows

    rlvr = prepare_dataset(shared, DatasetSpec(table="gsm8k", technique="rlvr", eval_fraction=0))
    assert rlvr.train.column_names == ["prompt", "answer", "solution"]
    raw = [json.loads(line) for line in (SHARED_DATA / "gsm8k_test.jsonl").read_text().splitlines()]
    expected = [r["answer"].rsplit("####", 1)[1].strip().replace(",", "") for r in raw]
    assert rlvr.train["answer"] == expected
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", a) for a in rlvr.train["answer"])


def test_hh_rlhf_imports_and_prepares_for_dpo_without_printing_rows(shared):
    dpo = prepare_dataset(shared, DatasetSpec(table="hh_rlhf_harmless", technique="dpo"))
    assert dpo.mapping.format == DatasetFormat.hh_rlhf
    assert len(dpo.bad_rows) == 9 and dpo.rows_read == 2312  # 4 empty last replies, 5 pairs with different prompts
    assert all(len(str(b)) < 120 for b in dpo.bad_rows)  # reasons only, no row text
    n = len(dpo.train) + len(dpo.eval) + dpo.duplicates_removed
    assert n == 2303 and dpo.train.column_names == ["prompt", "chosen", "rejected"]
    with gzip.open(SHARED_DATA / "hh_rlhf_harmless_base_test.jsonl.gz", "rt") as f:
        first = json.loads(f.readline())
    turns = first["chosen"].count("\n\nHuman:") + first["chosen"].count("\n\nAssistant:")
    row = (dpo.train if 0 in range(len(dpo.train)) else dpo.eval)[0]
    roles = [m["role"] for m in row["prompt"]]
    assert roles[0] == "user" and roles[-1] == "user" and all(a != b for a, b in zip(roles, roles[1:]))
    assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
    assert turns >= 2


def test_trl_trains_on_prepared_rows(shared, tmp_path):
    """The prepared columns are what TRL's trainers take: one DPO step on HH-RLHF, one SFT step on GSM8K."""
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from runtimes.models.sources import load_model, load_tokenizer, resolve_model
    from runtimes.training.tiny_models import build_tiny_model

    gsm = prepare_dataset(shared, DatasetSpec(sql="SELECT * FROM gsm8k LIMIT 8", technique="sft", eval_fraction=0))
    texts = [m["content"] for r in gsm.train for m in r["prompt"] + r["completion"]]
    source = resolve_model(str(build_tiny_model("qwen3", tmp_path / "m", texts)))
    tok, _ = load_tokenizer(source)
    common = dict(max_steps=1, per_device_train_batch_size=2, use_cpu=True, bf16=False, report_to=[],
                  save_strategy="no", disable_tqdm=True)
    sft = SFTTrainer(model=load_model(source), processing_class=tok, train_dataset=gsm.train,
                     args=SFTConfig(output_dir=str(tmp_path / "sft"), max_length=96, **common)).train()
    assert 4.0 < sft.training_loss < 9.0

    hh = prepare_dataset(shared, DatasetSpec(sql="SELECT * FROM hh_rlhf_harmless ORDER BY length(chosen), chosen LIMIT 5",
                                             technique="dpo", max_bad_fraction=0.5,
                                             eval_fraction=0))
    dpo = DPOTrainer(model=load_model(source), processing_class=tok, train_dataset=hh.train,
                     args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=512, **common)).train()
    assert abs(dpo.training_loss - 0.6931) < 0.05  # ln 2: the policy starts equal to its reference


def test_chat_formats_shape_for_sft_dpo_and_rlaif(workspace, tmp_path):
    _import_rows(workspace, tmp_path, "chats", [
        {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": f"Hi {i}"},
                           {"from": "gpt", "value": f"Hello {i}"}]} for i in range(5)])
    _import_rows(workspace, tmp_path, "alpaca", [
        {"instruction": "Add the numbers", "input": f"{i} and 1", "output": str(i + 1)} for i in range(5)])
    sft = prepare_dataset(workspace, DatasetSpec(table="chats", technique="sft", eval_fraction=0))
    assert sft.mapping.format == DatasetFormat.sharegpt and sft.train.column_names == ["messages"]
    assert sft.train[0]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 0"},
                                        {"role": "assistant", "content": "Hello 0"}]
    rlaif = prepare_dataset(workspace, DatasetSpec(table="chats", technique="rlaif", eval_fraction=0))
    assert rlaif.train[0] == {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 0"}],
                              "reference": "Hello 0"}
    alp = prepare_dataset(workspace, DatasetSpec(table="alpaca", technique="sft", eval_fraction=0))
    assert alp.train[2] == {"prompt": [{"role": "user", "content": "Add the numbers\n\n2 and 1"}],
                            "completion": [{"role": "assistant", "content": "3"}]}
    rlvr = prepare_dataset(workspace, DatasetSpec(table="alpaca", technique="rlvr", eval_fraction=0,
                                                  mapping={"question": "input", "answer": "output"}))
    assert rlvr.train["answer"] == ["1", "2", "3", "4", "5"] and rlvr.mapping.format == DatasetFormat.question_answer
