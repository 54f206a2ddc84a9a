"""FSDP ranks of a job and their checkpoints: FSDP2 on CPU ranks (gloo) through the Trainer's own accelerate path,
the topology each checkpoint was written with, whether a checkpoint resumes on this run's world size (and with which
gradient accumulation, so the global batch stays the approved one), and the whole model gathered from the shards.

Checkpoints of FSDP ranks are sharded: accelerate writes model and optimizer with torch.distributed.checkpoint
(DCP), one file per rank, which DCP reshards when it loads them on another number of ranks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from transformers import TrainerCallback

from core.errors import UserError

TOPOLOGY_FILE = "topology.json"
SHARDED_MODEL_DIR = "pytorch_model_fsdp_0"  # accelerate's DCP folder of the model's shards


class Topology(BaseModel):
    """How the ranks that wrote a checkpoint were laid out."""

    strategy: str
    world_size: int
    micro_batch: int
    gradient_accumulation: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.gradient_accumulation * self.world_size


def enable_cpu_fsdp(trainer: Any) -> None:
    """Make the Trainer's accelerator shard with FSDP2 on CPU ranks. accelerate sets its FSDP plugin only for GPU
    distributed types and otherwise wraps CPU ranks in DDP, although `fully_shard`, DCP and gloo all work on CPU;
    switching the distributed type before `train()` prepares the model lets accelerate's own FSDP2 path run."""
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise UserError(f"FSDP on CPU ranks needs a torchrun launch with the gloo backend; accelerate sees "
                        f"{state.distributed_type.value}")
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**trainer.args.fsdp_plugin_args)
    trainer.is_fsdp_enabled = True


class TopologyRecord(TrainerCallback):
    """Rank 0 writes the topology into each checkpoint it saves, so that a resume can check it."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 (transformers' signature)
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            (folder / TOPOLOGY_FILE).write_text(self.topology.model_dump_json(), encoding="utf-8")
        return control


def resume_accumulation(checkpoint: Path, strategy: str, world_size: int, micro_batch: int,
                        gradient_accumulation: int) -> int:
    """The gradient accumulation with which this run resumes `checkpoint`: its own when the world size is the
    checkpoint's, else the one that keeps the checkpoint's global batch (the approved curve). Raises `UserError`
    when the checkpoint cannot continue here, saying why."""
    sharded = (checkpoint / SHARDED_MODEL_DIR).is_dir()
    path = checkpoint / TOPOLOGY_FILE
    if not path.is_file():
        return gradient_accumulation  # written before topologies were recorded: resumed as it is
    written = Topology.model_validate(json.loads(path.read_text(encoding="utf-8")))
    if sharded != (strategy == "fsdp"):
        how = "sharded by FSDP (one DCP file per rank)" if sharded else f"whole by {written.strategy}"
        raise UserError(f"checkpoint {checkpoint} was written {how}, and this run uses strategy `{strategy}`: "
                        f"resume it with strategy `{written.strategy}`")
    if world_size == written.world_size:
        return gradient_accumulation
    per_step = micro_batch * world_size
    if written.global_batch % per_step:
        raise UserError(f"checkpoint {checkpoint} was written by {written.world_size} ranks with a global batch of "
                        f"{written.global_batch}; {world_size} ranks of micro-batch {micro_batch} cannot make that "
                        f"batch ({written.global_batch} is not a multiple of {per_step}), so the run would leave its "
                        f"loss curve: resume on {written.world_size} ranks or a number that divides it")
    return written.global_batch // per_step


def save_full_model(trainer: Any, folder: Path, rank: int) -> None:
    """Gather the shards into one whole model that rank 0 saves like a one-process run's (every rank takes part
    in the gather); a LoRA model saves its adapters only, as PEFT does."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    whole = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(str(folder), state_dict=whole)
        trainer.processing_class.save_pretrained(str(folder))
