"""``roadtrack validate``: a submission pickle against the videos of an annotation or a list."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io.annotations import load_annotation
from ..io.safe_pickle import read_pickle
from ..io.submission import FAILS, MISSCORED, SUSPICIOUS, check_submission, summarise
from ..labels import roadpp


@dataclass
class Validation:
    """Problems (the scorer fails or mis-scores: exit 1), warnings, and a one-line summary."""

    problems: list[str]
    warnings: list[str]
    summary: str


def validate_file(submission: str | Path, anno: str | Path | None = None,
                  videos: list[str] | None = None, subset: str | None = None
                  ) -> Validation:
    """Check a submission file against the videos of ``anno`` (of split ``subset``; also each
    video's frame count) or the named ``videos`` (ROAD++ label space)."""
    numf = None
    if anno is not None:
        annotation = load_annotation(anno, keep_tubes=False)
        labels, videos = annotation.labels, annotation.split(subset)
        if not videos:
            raise UserError(f"no videos of split {subset!r}", anno)
        numf = {v: annotation.videos[v].numf for v in videos}
    elif videos:
        labels = roadpp()
    else:
        raise UserError("no videos to check the submission against")
    data, notes = read_pickle(submission)
    check = check_submission(data, videos, labels, numf=numf)
    warnings = notes + [f"{submission}: {line}" for line in summarise(check.of(SUSPICIOUS))]
    fails, misscored = check.of(FAILS), check.of(MISSCORED)
    problems = [p.line() for p in check.problems]  # in the submission's order
    if problems:
        summary = (f"{submission}: {len(problems)} problems: the official scorer fails on "
                   f"{len(fails)}, mis-scores {len(misscored)}")
        return Validation(problems, warnings, summary)
    tubes = sum(len(t) for t in check.tubes.values())
    types = ", ".join(check.tubes)
    return Validation([], warnings, f"{submission}: valid: {types} for {len(videos)} videos, "
                                    f"{tubes} tubes scored")
