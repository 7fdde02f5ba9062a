"""Loading a job spec: reading the YAML file and validating a mapping into a spec model, every problem
reported at once as a `SpecError`.

`AnnotationJob.from_yaml` / `AnnotationJob.from_dict` are the entry points; they call these with
`model=AnnotationJob`. This module knows no spec part, only how a spec file is read and how pydantic's
errors become `SpecProblem`s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from taskbuilder.jobspec.problems import SpecError, SpecProblem

Model = TypeVar("Model", bound=BaseModel)


def read_spec_file(path: Path) -> Any:
    """The parsed YAML of the spec file at `path` (whatever YAML holds; `validate_spec` checks it is a mapping).

    Raises `SpecError` (source = `path`) when the file cannot be read as UTF-8 or is not valid YAML (with the
    line and column of the syntax error).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([SpecProblem(path="", message=f"cannot read the spec: {error}",
                                     hint="check the path; the spec is a UTF-8 YAML file")], path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError([SpecProblem(path="", message=f"YAML syntax error{where}: {getattr(error, 'problem', error)}",
                                     hint="fix the YAML (indentation, a missing ':' or an unclosed quote)")], path) from None


def validate_spec(model: type[Model], data: Any, *, source: str | Path | None = None,
                  base_dir: str | Path | None = None) -> Model:
    """`data` validated as `model`; relative paths in it resolve against `base_dir` (s3:// kept).

    Raises `SpecError` (source = `source`) listing every problem, each with its field path and a hint.
    """
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(path="", message=f"the spec is a {type(data).__name__}, not a mapping",
                                     hint="write the spec as YAML keys: name, dataset, batch, study, ...")], source)
    try:
        return model.model_validate(data, context={"base_dir": str(base_dir) if base_dir is not None else None})
    except ValidationError as error:
        raise SpecError.from_validation_error(error, source, root=model) from None
