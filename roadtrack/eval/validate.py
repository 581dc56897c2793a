"""``roadtrack validate``: a submission pickle against the videos of an annotation or a list."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..labels import roadpp
from .submission import check_submission, load_pickle


def validate_file(submission: str | Path, anno: str | Path | None = None,
                  videos_file: str | Path | None = None, subset: str | None = None
                  ) -> tuple[list[str], list[str], str]:
    """(problems, warnings, one-line summary) of a submission file."""
    if anno is not None:
        from ..io.annotations import load_annotation

        annotation = load_annotation(anno, keep_tubes=False)
        labels, videos = annotation.labels, annotation.split(subset)
        if not videos:
            raise UserError(f"no videos of split {subset!r}", anno)
    else:
        from ..io.names import read_video_list

        labels, videos = roadpp(), read_video_list(videos_file)
    data = load_pickle(submission)
    problems, warnings = check_submission(data, videos, labels)
    if problems:
        return problems, warnings, ""
    tubes = sum(len(data[t].get(v, [])) for t in data for v in videos)
    summary = (f"{submission}: valid: {', '.join(data)} for {len(videos)} videos, "
               f"{tubes} tubes")
    return problems, warnings, summary
