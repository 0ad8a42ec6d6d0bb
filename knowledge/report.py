"""Load reports: every loader counts what it read and what it rejected, with file, line and reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field


class Rejected(BaseModel):
    """One row a loader could not use, pointing at where it is so a human can look."""

    file: str
    line: int = Field(description="1-based physical line where the record starts (0 when unknown).")
    reason: str


class LoadReport(BaseModel):
    """Counts for one source file; ``rejected`` keeps a capped sample, ``reasons`` the full tally."""

    source: str
    file: str
    rows: int = 0
    kept: int = 0
    rejected_count: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    rejected: list[Rejected] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    max_samples: int = Field(50, exclude=True)

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        tally = Counter(self.reasons)
        tally[reason.split(":")[0]] += 1
        self.reasons = dict(tally)
        if len(self.rejected) < self.max_samples:
            self.rejected.append(Rejected(file=self.file, line=line, reason=reason))

    def summary(self) -> str:
        text = f"{self.source}: {self.kept:,} kept of {self.rows:,} rows ({Path(self.file).name})"
        if self.rejected_count:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items()))
            text += f"; {self.rejected_count:,} rejected ({reasons})"
        return text
