"""Group-by and filter names of MetricFlow (`customer__country__region`, `metric_time__month`,
`booking__ds__extract_year`, `listing`) read into what they ask for: entity path, element, grain, date part.

Only reads names; which model and column a name lands on is decided by the join graph.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import UserError
from catalog.semantic.spec import GRAINS
from catalog.semantic.time_grains import check_date_part, check_grain
from catalog.suggestions import unknown

METRIC_TIME = "metric_time"
SEPARATOR = "__"


@dataclass(frozen=True)
class ElementRef:
    """One requested dimension, time dimension or entity, and the name its column gets in the output."""
    name: str
    element: str
    entity_path: tuple[str, ...] = ()
    grain: str | None = None
    date_part: str | None = None

    @property
    def is_metric_time(self) -> bool:
        return self.element == METRIC_TIME and not self.entity_path

    @property
    def qualified(self) -> str:
        """The MetricFlow spelling: entity links, element, then grain or date part."""
        parts = [*self.entity_path, self.element]
        if self.date_part:
            parts.append(f"extract_{self.date_part}")
        elif self.grain:
            parts.append(self.grain)
        return SEPARATOR.join(parts)

    def with_time(self, grain: str | None = None, date_part: str | None = None) -> "ElementRef":
        """The same element at a grain or date part (a template's `.grain('month')`), named as MetricFlow would."""
        ref = replace(self, grain=check_grain(grain) if grain else self.grain,
                      date_part=check_date_part(date_part) if date_part else self.date_part)
        return replace(ref, name=ref.qualified)


def parse_name(name: str, entity_path: list[str] | tuple[str, ...] = ()) -> ElementRef:
    """Split a name on `__`: leading parts are entity links, then the element, then an optional grain
    (`__month`) or date part (`__extract_year`). `entity_path` (from `Dimension(..., entity_path=[...])`)
    is put in front of the links, as MetricFlow does."""
    text = name.strip()
    parts = text.split(SEPARATOR)
    if not text or any(not p for p in parts):
        raise UserError(f"`{name}` is not a dimension name: write entity links, the name and an optional grain "
                        "joined by `__`, such as `customer__region` or `metric_time__month`")
    grain = date_part = None
    if len(parts) > 1 and parts[-1].lower().startswith("extract_"):
        date_part = check_date_part(parts.pop()[len("extract_"):])
    elif len(parts) > 1 and parts[-1].lower() in GRAINS:
        grain = parts.pop().lower()
    if parts[0] == METRIC_TIME and len(parts) > 1:
        raise UserError(unknown("time grain", parts[1], GRAINS)
                        + f" (in `{name}`; date parts are written `extract_year` and so on)")
    links = tuple(p.strip() for p in entity_path) + tuple(parts[:-1])
    return ElementRef(text, parts[-1], links, grain, date_part)
