"""Peak memory of a training run, from the model's shape and the run's settings: weights, LoRA/QLoRA adapters,
optimizer states, gradients, activations (with and without gradient checkpointing) and overhead.

Pure arithmetic once the `ModelShape` is read; it never loads weights or allocates device memory.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import UserError
from runtimes.training.recipes import Technique as Recipe

Method = Literal["full", "lora", "qlora"]
Precision = Literal["fp32", "bf16", "fp16"]
Device = Literal["cpu", "cuda"]

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# 4-bit NF4 weights with one fp32 absmax per 64 weights (bitsandbytes' default block size).
QLORA_BYTES_PER_WEIGHT = 0.5 + 4 / 64
ADAM_STATES = 2  # exp_avg and exp_avg_sq, each the size of the trainable parameters

# Calibrated, not derived, on CPU (fp32, SDPA attention, TRL 1.16 SFTTrainer): a least-squares fit, weighted by
# 1/measured, of peak RSS minus the counted weights, gradients and Adam states, on 5 of the 10 configurations of
# bench/memory_estimate.py (6m-full-b4-l128, 25m-full-b4-l256, 25m-lora-b8-l256, 25m-lora-b16-l512,
# moe-full-b8-l256); the other 5 were held out. Three terms were fitted:
# - memory a training child holds beyond the counted tensors (oneDNN/MKL workspaces, the dataloader's batches,
#   TRL's and accelerate's objects, allocator arenas);
CPU_OVERHEAD_BYTES = 105 * 2**20
# - a factor on the counted per-layer activations (autograd and the allocator keep more than the tensors named);
CPU_ACTIVATION_FACTOR = 1.35
# - fp32 vocabulary-sized tensors per token: logits, log-softmax, their gradients, and TRL's entropy and
#   accuracy metrics.
LOGIT_COPIES_CPU = 6.75
# Counted, for CUDA: logits, log-softmax kept for the loss's backward, and the two gradients that replace them.
LOGIT_COPIES = 4
# Not fitted (no GPU measured here): allocator fragmentation on top of the counted tensors, and the CUDA
# context, which `max_memory_allocated` does not show but which occupies the card.
CUDA_FRAGMENTATION = 0.10
CUDA_CONTEXT_BYTES = 512 * 2**20


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a causal LM, read from its `transformers` config."""

    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    n_params: int
    n_embedding_params: int          # input embeddings and an untied output head: never quantized
    lora_modules: int                # modules and expert weights that PEFT's "all-linear" LoRA targets
    lora_params_per_rank: int        # adapter parameters at rank 1 (the count is linear in the rank)
    num_experts: int = 0
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    shared_intermediate_size: int = 0
    moe_layers: int = 0
    tie_word_embeddings: bool = False
    eager_attention: bool = False    # attention probabilities are stored (no fused attention kernel)
    n_expert_params: int = 0         # parameters of routed experts, of which only top-k of E run per token
    max_positions: int = 0           # the context length the model was built for (0: unknown)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0 and self.moe_layers > 0

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ModelShape:
        """Read `config.json` of a local model folder or of a hub id already in the cache (never downloads)."""
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read a model config from `{path}`: {str(exc).splitlines()[0]} "
                            "(give a local model folder with a config.json, or a hub id already downloaded)") from exc
        return cls.from_config(config)

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """Dimensions from the config; parameter counts from the model built on the meta device (no memory)."""
        import torch
        from transformers import AutoModelForCausalLM

        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        head = model.get_output_embeddings()
        n_params = sum(p.numel() for p in model.parameters())  # tied weights are yielded once
        embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
        tied = bool(getattr(text, "tie_word_embeddings", False))
        if head is not None and not tied:
            embedding += head.weight.numel()
        layers = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == text.num_hidden_layers]
        expert_params = sum(p.numel() for name, p in model.named_parameters() if ".experts." in f".{name}")
        moe_layers = sum(1 for layer in (layers[0] if layers else []) if hasattr(getattr(layer, "mlp", None), "experts"))

        heads = text.num_attention_heads
        hidden = text.hidden_size
        head_dim = getattr(text, "head_dim", None) or getattr(text, "v_head_dim", None) or hidden // heads
        experts = _first(text, "num_experts", "n_routed_experts", "num_local_experts") or 0
        shared = _first(text, "shared_expert_intermediate_size") or \
            (_first(text, "n_shared_experts") or 0) * (_first(text, "moe_intermediate_size") or 0)
        return cls(
            model_type=text.model_type, hidden_size=hidden, num_layers=text.num_hidden_layers, num_heads=heads,
            num_kv_heads=getattr(text, "num_key_value_heads", None) or heads, head_dim=head_dim,
            vocab_size=text.vocab_size, intermediate_size=getattr(text, "intermediate_size", 0) or 0,
            n_params=n_params, n_embedding_params=embedding, **_lora_targets(model),
            num_experts=int(experts),
            experts_per_token=int(_first(text, "num_experts_per_tok", "experts_per_token") or 0),
            expert_intermediate_size=int(_first(text, "moe_intermediate_size") or text.intermediate_size or 0),
            shared_intermediate_size=int(shared), moe_layers=moe_layers, tie_word_embeddings=tied,
            eager_attention=getattr(text, "_attn_implementation", None) == "eager",
            n_expert_params=expert_params, max_positions=int(getattr(text, "max_position_embeddings", 0) or 0),
        )

    @property
    def active_params(self) -> int:
        """Parameters one token passes through: all but the routed experts it is not sent to."""
        if not self.is_moe:
            return self.n_params
        share = self.experts_per_token / self.num_experts
        return int(self.n_params - self.n_expert_params * (1 - share))


def _lora_targets(meta_model: Any) -> dict[str, int]:
    """What PEFT itself targets with `all-linear` at rank 1 (it also adapts fused MoE expert weights, at twice
    the rank for gate/up), counted on the meta-device model so that no memory is allocated."""
    import warnings

    from peft import LoraConfig, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(meta_model, LoraConfig(r=1, target_modules="all-linear", task_type="CAUSAL_LM"))
    per_rank = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    modules = sum(1 for name, _ in peft_model.named_modules() if name.endswith("lora_A"))
    return {"lora_modules": modules, "lora_params_per_rank": per_rank}


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value:
            return value
    return None


@dataclass(frozen=True)
class TrainingShape:
    """The settings that decide memory: what is trained, in which precision, on how many tokens at once."""

    method: Method = "lora"
    precision: Precision = "fp32"
    micro_batch: int = 1
    seq_len: int = 512
    lora_rank: int = 16
    gradient_checkpointing: bool = False
    device: Device = "cpu"
    recipe: Recipe = "sft"
    completion_len: int = 0          # rlvr/rlaif: tokens generated per completion (part of seq_len)
    generation_batch: int = 0        # rlvr/rlaif: completions generated at once (0: the micro-batch)
    ranks: int = 1                   # processes training together (data parallel); the estimate is per rank
    sharded: bool = False            # FSDP/ZeRO-3: weights, gradients and optimizer states split over the ranks


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per part of the peak; `total` is what must fit in the device's free memory."""

    weights: int
    adapters: int
    optimizer: int
    gradients: int
    activations: int
    overhead: int
    total: int
    trainable_params: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def parts(self) -> dict[str, int]:
        d = asdict(self)
        return {k: d[k] for k in ("weights", "adapters", "optimizer", "gradients", "activations", "overhead")}


def lora_params(shape: ModelShape, rank: int) -> int:
    """LoRA's A (r × in) and B (out × r) for every targeted module."""
    return rank * shape.lora_params_per_rank


def activation_elements_per_token(shape: ModelShape, checkpointing: bool, seq_len: int) -> float:
    """Elements that one token keeps alive for the backward pass, summed over layers (the output head apart).

    Counted from what autograd saves in a Llama-style block: the residual and two RMSNorms (3 × hidden each
    side), q/k/v, their rotated copies and the attention output (about 5 × q width and 4 × kv width), the
    gated MLP (gate, up, activation, product: 4 × intermediate); routed experts keep the token's copy, its
    output and their MLP per expert chosen, plus the router's logits.
    """
    h, q = shape.hidden_size, shape.num_heads * shape.head_dim
    kv = shape.num_kv_heads * shape.head_dim
    attention = 6 * h + 5 * q + 4 * kv
    if shape.eager_attention:
        attention += 2 * shape.num_heads * seq_len  # scores and probabilities
    dense = attention + 4 * shape.intermediate_size
    moe = attention + shape.experts_per_token * (2 * h + 4 * shape.expert_intermediate_size) \
        + 4 * shape.shared_intermediate_size + 3 * shape.num_experts
    per_layer = [moe] * shape.moe_layers + [dense] * (shape.num_layers - shape.moe_layers)
    if not checkpointing:
        return float(sum(per_layer))
    # Only each block's input is kept; one block at a time is recomputed during the backward pass.
    return float(h * shape.num_layers + max(per_layer))


def estimate_memory(shape: ModelShape, run: TrainingShape) -> MemoryEstimate:
    """The peak memory of `run` on `shape`, by part. Full fine-tuning keeps weights, gradients and two Adam
    states per parameter; LoRA keeps the frozen base (4-bit linears for QLoRA) plus fp32 adapters with theirs."""
    if run.micro_batch < 1 or run.seq_len < 1:
        raise UserError(f"micro-batch and sequence length must be at least 1 (got {run.micro_batch}, {run.seq_len})")
    if run.method == "qlora" and run.device != "cuda":
        raise UserError("QLoRA needs a CUDA GPU (bitsandbytes' 4-bit kernels); use `lora` or `full` on CPU")
    notes: list[str] = []
    wb = BYTES[run.precision]
    n = shape.n_params
    if run.method == "full":
        weights = n * wb
        trainable = n
        train_bytes = wb  # TRL keeps gradients and Adam states in the weights' dtype
        adapters = 0
    else:
        if run.method == "qlora":
            quantized = n - shape.n_embedding_params
            weights = int(quantized * QLORA_BYTES_PER_WEIGHT + shape.n_embedding_params * BYTES["bf16"])
        else:
            weights = n * wb
        trainable = lora_params(shape, run.lora_rank)
        train_bytes = 4  # PEFT keeps adapters in fp32 whatever the base's dtype
        adapters = trainable * train_bytes
    if run.recipe == "dpo" and run.method == "full":
        weights *= 2  # a frozen reference copy; with adapters the base with adapters off is the reference
        notes.append("DPO with full fine-tuning keeps a frozen reference copy of the model")
    gradients = trainable * train_bytes
    optimizer = ADAM_STATES * trainable * train_bytes
    if run.ranks > 1 and run.sharded:
        # Each rank keeps 1/N of every tensor and gathers one block's weights whole while it computes it.
        block = (n - shape.n_embedding_params) / max(1, shape.num_layers) * wb
        weights = int(weights / run.ranks + block)
        adapters, gradients, optimizer = (int(x / run.ranks) for x in (adapters, gradients, optimizer))
        notes.append(f"FSDP shards weights, gradients and optimizer states over {run.ranks} ranks: each holds "
                     f"1/{run.ranks} of them, plus one block's weights gathered whole while it computes")
    elif run.ranks > 1:
        gradients *= 2  # DDP's reducer keeps its all-reduce buckets beside the gradients
        notes.append(f"DDP keeps a whole copy of the model on each of {run.ranks} ranks, and its all-reduce "
                     "buckets double the gradients")

    act_bytes = 4 if run.precision == "fp32" else 2
    sequences = run.micro_batch * (2 if run.recipe == "dpo" else 1)  # DPO runs chosen and rejected together
    tokens = sequences * run.seq_len
    per_token = activation_elements_per_token(shape, run.gradient_checkpointing, run.seq_len)
    if run.method != "full":
        per_token += shape.lora_modules * run.lora_rank  # each adapter's A output
    if run.recipe in ("rlvr", "rlaif") and run.completion_len:
        logit_tokens = sequences * run.completion_len  # GRPO scores completion tokens only
    else:
        logit_tokens = tokens
    cpu = run.device == "cpu"
    per_token *= CPU_ACTIVATION_FACTOR if cpu else 1.0
    copies = LOGIT_COPIES_CPU if cpu else LOGIT_COPIES
    activations = int(tokens * per_token * act_bytes + logit_tokens * shape.vocab_size * copies * 4)

    if run.recipe in ("rlvr", "rlaif"):
        # Generation happens before the update, with no gradients: a KV cache per completion.
        gen = run.generation_batch or run.micro_batch
        kv_cache = 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * run.seq_len * gen * act_bytes
        if kv_cache > activations:
            notes.append("generation's KV cache outweighs the update's activations")
            activations = kv_cache

    if run.device == "cpu":
        # Freed activations mostly stay in the process, so gradients add to them rather than replace them.
        transient = activations + gradients
        overhead = CPU_OVERHEAD_BYTES
        total = weights + adapters + optimizer + transient + overhead
    else:
        # During the backward pass gradients appear as activations are freed: the peak is the larger.
        transient = max(activations, gradients)
        overhead = int(CUDA_CONTEXT_BYTES + CUDA_FRAGMENTATION * (weights + optimizer + transient))
        total = weights + adapters + optimizer + transient + overhead
    return MemoryEstimate(weights=int(weights), adapters=int(adapters), optimizer=int(optimizer),
                          gradients=int(gradients), activations=activations, overhead=int(overhead),
                          total=int(total), trainable_params=int(trainable), notes=tuple(notes))


def gib(n_bytes: float) -> str:
    """Bytes as a short human figure ("1.4 GiB", "312 MiB")."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:.1f} GiB"
    return f"{max(n_bytes, 0) / 2**20:.0f} MiB"

