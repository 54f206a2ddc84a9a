"""SFT rows are cut to the planned `max_length` in every batching mode (padded, packed, padding-free), on real
conversations of varied length from a DuckDB workspace and a tiny local model: no row the trainer feeds the model
is longer, and the rows that were longer are cut, not dropped."""
from __future__ import annotations

import json

import pytest

from catalog.importers import import_paths
from core.workspace import Workspace
from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
from runtimes.training.recipes import parse_config, recipe

MAX_LENGTH = 48


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from runtimes.models.sources import resolve_model
    from runtimes.training.tiny_models import build_tiny_model

    ws = Workspace(tmp_path_factory.mktemp("truncation") / "ws")
    ws.create()
    replies = [" ".join(["the parcel ships today"] * (1 + i % 7)) for i in range(14)]  # 1 to 7 repeats
    chats = ws.root / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Where is order {i}?"},
        {"role": "assistant", "content": reply}]}) + "\n" for i, reply in enumerate(replies)))
    import_paths(ws, [chats])
    model = build_tiny_model("qwen3", tmp_path_factory.mktemp("models") / "tiny-qwen3",
                             replies + [f"Where is order {i}?" for i in range(14)], hidden=32, layers=1, heads=2,
                             kv_heads=1, vocab_size=300)
    prepared = prepare_dataset(ws, DatasetSpec(table="chats", technique="sft", eval_fraction=0.2))
    return resolve_model(str(model)), prepared


def _full_lengths(source, rows) -> list[int]:
    from runtimes.models.sources import load_tokenizer

    tokenizer, _ = load_tokenizer(source)
    return [len(tokenizer.apply_chat_template(list(r["messages"]), tokenize=True, return_dict=True)["input_ids"])
            for r in rows]


@pytest.mark.parametrize("batching", [{}, {"packing": True}, {"padding_free": True}],
                         ids=["padded", "packed", "padding-free"])
def test_no_training_row_is_longer_than_max_length(setup, batching, tmp_path):
    source, prepared = setup
    longer = [n for n in _full_lengths(source, prepared.train) if n > MAX_LENGTH]
    assert longer, "the data must hold rows longer than max_length for this test to mean anything"
    config = parse_config("sft", {"max_length": MAX_LENGTH, "micro_batch": 4, "max_steps": 1, "logging_steps": 1,
                                  **batching})
    trainer = recipe("sft").build_trainer(config, source, prepared, tmp_path / "out", [])

    for dataset in (trainer.train_dataset, trainer.eval_dataset):
        lengths = [len(ids) for ids in dataset["input_ids"]]
        assert max(lengths) == MAX_LENGTH  # the longer rows are cut to exactly max_length
    if not batching.get("packing"):  # one row per example: cut, none dropped
        assert len(trainer.train_dataset) == len(prepared.train)
    # What the model is fed: padding-free and packed batches are flattened into one sequence in which each
    # example restarts its positions, so the longest is the largest position + 1; a padded batch is as long as
    # its longest row.
    for batch in trainer.get_train_dataloader():
        if batching:
            assert batch["input_ids"].shape[0] == 1
            assert int(batch["position_ids"].max()) + 1 <= MAX_LENGTH
        else:
            assert batch["input_ids"].shape[1] <= MAX_LENGTH
    trainer.train()  # and it trains
    assert trainer.state.global_step == 1
