"""Generation engines behind an endpoint: transformers (with LoRA adapters, quantization, speculative decoding)
and vLLM, pooled per endpoint.
"""
