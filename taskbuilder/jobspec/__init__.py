"""The job spec, split by part (see each module); the names most callers need are re-exported here.

`taskbuilder/jobspec/annotation_job.py` holds the top model `AnnotationJob`; `problems.py` the `SpecError`.
"""

from taskbuilder.jobspec.annotation_job import AnnotationJob
from taskbuilder.jobspec.dataset import META_PREFIX, TASK_GROUP_COLUMN
from taskbuilder.jobspec.problems import SpecError, SpecProblem

__all__ = ["AnnotationJob", "META_PREFIX", "SpecError", "SpecProblem", "TASK_GROUP_COLUMN"]
