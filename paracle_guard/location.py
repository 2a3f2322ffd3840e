"""Where a fact or a finding lives: a file and line, or a path inside an image layer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    line: int | None = None
    end_line: int | None = None
    # For image findings: the layer (diff ID) that put the file there.
    layer: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path
