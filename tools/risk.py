"""What running a tool can do to the world: `read`, `write`, `compute` or `deploy`.

Declared by each tool, never by a planner: the review policy trusts this and nothing a plan says.
"""
from __future__ import annotations

from enum import Enum


class Risk(str, Enum):
    read = "read"  # looks, changes nothing
    write = "write"  # changes the warehouse or the catalog
    compute = "compute"  # spends noticeable compute (training, large jobs)
    deploy = "deploy"  # exposes something to others (an endpoint, a schedule)
