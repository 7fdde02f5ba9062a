"""A job spec's problems and the error that carries them all (`SpecProblem`, `SpecError`).

Each problem names its field path (`batch.instructions[1].options[2].value`, zero-based list positions), what
is wrong and what to do; `str(SpecError)` lists every problem, one per line, with the spec file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from taskbuilder.jobspec.base import join_path
from taskbuilder.jobspec.hints import hint_for, loc_to_path, message_for


class SpecProblem(BaseModel):
    """One problem (or warning) in a job spec: `path` is the field path, e.g. `study.reward`."""

    path: str = Field(description="Field path in the spec, zero-based list positions, e.g. batch.instructions[0].options[1].value.")
    message: str = Field(description="What is wrong.")
    hint: str = Field(default="", description="What to do about it.")

    def format(self, source: str | None = None) -> str:
        """One line: `<source>: <path>: <message> (hint: <hint>)`."""
        where = f"{source}: " if source else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.path or '<spec>'}: {self.message}{hint}"


class SpecError(Exception):
    """A job spec is invalid. `problems` holds every problem found; `source` is the spec file (or None).

    `str(error)` lists them all, one per line, each naming the spec file and the field path.
    """

    def __init__(self, problems: list[SpecProblem], source: str | Path | None = None):
        self.problems = problems
        self.source = str(source) if source is not None else None
        lines = [p.format(self.source) for p in problems]
        header = f"invalid job spec{f' {self.source}' if self.source else ''}: {len(problems)} problem(s)"
        super().__init__("\n".join([header, *("  " + line for line in lines)]))

    def __reduce__(self):  # keeps the problems when Prefect or multiprocessing pickles the error
        return (type(self), (self.problems, self.source))

    @classmethod
    def from_validation_error(cls, error: ValidationError, source: str | Path | None = None, *,
                              root: type[BaseModel]) -> "SpecError":
        """Convert pydantic's error of validating `root` (the model validated, e.g. `AnnotationJob`) into a
        `SpecError` with field paths and hints (the hints read the field descriptions of `root`'s models)."""
        problems: list[SpecProblem] = []
        for item in error.errors(include_url=False):
            ctx = item.get("ctx") or {}
            path = loc_to_path(item["loc"])
            if "problems" in ctx:  # our own checks carry sub-paths, messages and hints
                for subpath, message, hint in ctx["problems"]:
                    problems.append(SpecProblem(path=join_path(path, subpath), message=message, hint=hint))
                continue
            problems.append(SpecProblem(path=path, message=message_for(root, item), hint=hint_for(root, item)))
        return cls(problems, source)
