"""Chat templates (Jinja) of the model families, each with `{% generation %}` markers for assistant-only loss.

Pure text: the family table names which template a family falls back on; nothing here touches a tokenizer.
"""
from __future__ import annotations

# Qwen 2/2.5/3 and Lathe's tiny models.
CHATML = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

LLAMA3 = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] | trim + '<|eot_id|>' -}}{%- endgeneration -%}"
    "{%- else -%}{{- message['content'] | trim + '<|eot_id|>' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)

# Llama 2 chat: the system prompt is folded into the first user turn.
LLAMA2 = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' -%}"
    "{%- set rest = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set rest = messages -%}{%- endif -%}"
    "{%- for message in rest -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- bos_token + '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- ' ' + message['content'] | trim + ' ' + eos_token -}}{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# DeepSeek V2/V3 and the R1 distills.
DEEPSEEK = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{- message['content'] -}}"
    "{%- elif message['role'] == 'user' -%}{{- '<｜User｜>' + message['content'] -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- '<｜Assistant｜>' -}}"
    "{%- generation -%}{{- message['content'] + '<｜end▁of▁sentence｜>' -}}{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<｜Assistant｜>' -}}{%- endif -%}"
)

# GPT-OSS speaks the harmony format; a fine-tuned reply goes to the `final` channel, and the generation prompt
# opens that channel, since the channel header sits outside the trained (assistant-masked) tokens.
HARMONY = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' -}}"
    "{%- generation -%}{{- message['content'] + '<|return|>' -}}{%- endgeneration -%}"
    "{%- else -%}"
    "{{- '<|start|>' + ('developer' if message['role'] == 'system' else message['role']) + '<|message|>' "
    "+ message['content'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start|>assistant<|channel|>final<|message|>' -}}{%- endif -%}"
)

# The special tokens each template writes; a tokenizer that lacks one cannot use the template.
TEMPLATE_TOKENS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "llama2": (),
    "deepseek": ("<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"),
    "harmony": ("<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|return|>"),
}

TEMPLATES: dict[str, str] = {
    "chatml": CHATML, "llama3": LLAMA3, "llama2": LLAMA2, "deepseek": DEEPSEEK, "harmony": HARMONY,
}
