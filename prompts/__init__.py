"""Prompt templates as files in this folder (`<name>.md`, Jinja2), loaded and rendered by name.

Templates see only the values passed to `render`; a missing value is an error, never an empty string.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE)), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.md"))


def render(name: str, **values: Any) -> str:
    """The template `prompts/<name>.md` rendered with `values`."""
    import jinja2

    try:
        template = _environment().get_template(f"{name}.md")
    except jinja2.TemplateNotFound:
        from core.errors import UserError
        from catalog.suggestions import unknown

        raise UserError(unknown("prompt template", name, names())) from None
    return template.render(**values).strip()
