"""Saving the report's figures: matplotlib without a display, one PNG per figure in the report's folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 90


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, folder: Path, name: str, written: list[str]) -> None:
    """Write `fig` as `folder/name`, close it (figures hold memory until closed) and list the name in `written`."""
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(folder / name, dpi=DPI)
    plt.close(fig)
    written.append(name)
