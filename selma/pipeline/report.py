"""What a run reports: per stage, the artifacts it owns, whether it did work, and lines for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StageReport:
    """What one stage did: the artifacts it is responsible for and whether it did any work this time."""

    name: str
    artifacts: list[tuple[str, Path]] = field(default_factory=list)
    did_work: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_dir: Path
    stages: list[StageReport]

    @property
    def artifacts(self) -> list[tuple[str, Path]]:
        return [a for stage in self.stages for a in stage.artifacts]

    @property
    def did_work(self) -> bool:
        return any(stage.did_work for stage in self.stages)

    def artifact_table(self) -> str:
        return "\n".join(f"  {kind:9s} {path}" for kind, path in self.artifacts)
