"""Loading a job spec: reading the YAML file and validating a mapping into a spec model, every problem
reported at once as a `SpecError`.

`AnnotationJob.from_yaml` / `AnnotationJob.from_text` / `AnnotationJob.from_dict` are the entry points (the CLI's
run and validate, the deployments' launch-from-s3); they call these with `model=AnnotationJob`. YAML text is read
by `strict_yaml` (see there for the rules). This module knows no spec part, only how a spec file is read and how pydantic's
errors become `SpecProblem`s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from taskbuilder.jobspec.problems import SpecError, SpecProblem
from taskbuilder.jobspec.strict_yaml import StrictYamlError, parse_dotted, read_yaml

Model = TypeVar("Model", bound=BaseModel)


def read_spec_file(path: Path) -> str:
    """The text of the spec file at `path`. Raises `SpecError` (source = `path`) when it cannot be read as UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([SpecProblem(path="", message=f"cannot read the spec: {error}",
                                     hint="check the path; the spec is a UTF-8 YAML file")], path) from None


def load_spec_text(model: type[Model], text: str, *, source: str | Path | None, base_dir: str | Path | None = None,
                   adjust: Callable[[dict], None] | None = None,
                   text_fields: Callable[[tuple], bool] = lambda path: False) -> Model:
    """The spec in YAML `text`, read strictly (`strict_yaml`: no repeated keys, aliases capped, text kept as
    written) and validated as `model`; `adjust(data)` may change the parsed mapping first (launch-from-s3 points
    it at the uploaded CSV). `text_fields(path)` names pass-through fields the API takes as text.

    Raises `SpecError` (source = `source`) listing every problem, each with its field path, line and a hint.
    """
    try:
        document = read_yaml(text)
    except StrictYamlError as error:
        raise _from_yaml_problems(error, source) from None
    if isinstance(document.data, dict) and adjust is not None:
        document.adjust(adjust)
    if not isinstance(document.data, dict):
        return validate_spec(model, document.data, source=source, base_dir=base_dir)  # raises: not a mapping
    context = {"base_dir": str(base_dir) if base_dir is not None else None}
    try:
        return document.validate(lambda data: model.model_validate(data, context=context), text_fields=text_fields)
    except StrictYamlError as error:
        raise _from_yaml_problems(error, source) from None
    except ValidationError as error:
        found = SpecError.from_validation_error(error, source, root=model)
        problems = [problem.model_copy(update={"line": document.line_of(parse_dotted(problem.path))})
                    for problem in found.problems]
        raise SpecError(problems, source) from None


def _from_yaml_problems(error: StrictYamlError, source: str | Path | None) -> SpecError:
    return SpecError([SpecProblem(path=p.path, message=p.message, hint=p.hint, line=p.line) for p in error.problems], source)


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
