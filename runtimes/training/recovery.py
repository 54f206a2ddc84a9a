"""How a job with several ranks recovers a lost rank: `disk` (the job restarts from its last checkpoint) or `peer`
(torchft: the others train on, and a replacement receives model and optimizer state from a healthy peer). Checks
that a plan's recipe, strategy and ranks can be healed from a peer, with clear refusals, and says it in words.

Pure: it reads settings and whether torchft is installed; it never starts a process.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from core.errors import UserError

RECOVERIES = ("disk", "peer")
PEER_TECHNIQUES = ("sft",)  # the recipe whose healing a test of a killed rank checks
PEER_STRATEGY = "ddp"             # every rank holds a whole copy: any one of them can hand the state over


def check_recovery(technique: str, settings: dict[str, Any]) -> None:
    """A `recovery` setting the job can honour, or a `UserError` saying what would work."""
    recovery = settings.get("recovery", "disk")
    if recovery not in RECOVERIES:
        raise UserError(f"setting `recovery` = {recovery!r}: it takes disk (restart from the last checkpoint) or "
                        "peer (a lost rank is healed from a healthy one)")
    if recovery == "disk":
        return
    processes = int(settings.get("processes", 1))
    if processes < 2:
        raise UserError("setting `recovery` = peer heals a lost rank from another rank, and `processes` is 1: set "
                        "`processes` to 2 or more (on a CPU-only machine, N CPU processes with gloo)")
    if int(settings.get("min_ranks", 1)) > processes:
        raise UserError(f"setting `min_ranks` = {settings['min_ranks']} is more than the {processes} ranks: a step "
                        f"could never start; it takes from 1 (survivors train on) to {processes} (they wait for a "
                        "replacement)")
    if technique not in PEER_TECHNIQUES:
        raise UserError(f"setting `recovery` = peer covers sft; {technique} is not covered yet (its steps are not "
                        "checked against a killed rank): use `recovery` = disk")
    strategy = settings.get("strategy", PEER_STRATEGY)
    if strategy != PEER_STRATEGY:
        raise UserError(f"setting `recovery` = peer needs strategy ddp, a whole copy of the model on every rank to "
                        f"hand over; `{strategy}` shards it, so no single rank holds the state: use strategy ddp, "
                        "or `recovery` = disk")
    if importlib.util.find_spec("torchft") is None:
        raise UserError("setting `recovery` = peer needs torchft, which is not installed: "
                        "`pip install lathe-ml[recovery]` (torchft 0.2.0), or use `recovery` = disk")


def describe_recovery(settings: dict[str, Any]) -> str | None:
    """The plan's line about recovery, for a job with several ranks."""
    processes = int(settings.get("processes", 1))
    if processes < 2:
        return None
    if settings.get("recovery", "disk") == "peer":
        least = int(settings.get("min_ranks", 1))
        survivors = ("the others train on without it (a smaller global batch until it is back)" if least == 1 else
                     f"the others keep their state and wait until {least} ranks can step (`min_ranks`)")
        return (f"Recovery: peer. The {processes} ranks are torchft replica groups with a Lighthouse and a quorum at "
                f"every step; when one dies, {survivors}, its replacement receives model, optimizer and scheduler "
                "state from a healthy rank over the network, and no rank reloads a checkpoint. Checkpoints still "
                "guard against losing every rank at once.")
    return ("Recovery: disk. A lost rank stops the job, which restarts every rank from its last checkpoint "
            "(`recovery` = peer heals it from a healthy rank instead, with torchft).")
