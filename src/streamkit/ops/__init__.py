"""Operations tooling: ``streamkit tail`` (follow a table's stream) and ``streamkit dlq``
(inspect and replay on-failure destinations).

Each command's ``cli_main`` lives in its module (:mod:`.tail`, :mod:`.dlq`) and is imported
only when the command runs; the building blocks are usable from Python too:

- :class:`~streamkit.ops.follow.StreamFollower` reads every shard of a stream, parents before
  children, with adaptive polling;
- :func:`~streamkit.ops.tail_format.format_line` / :func:`~streamkit.ops.tail_format.as_json`
  render a record without its images unless asked;
- :class:`~streamkit.ops.failure_records.FailureRecord` parses Lambda's on-failure record;
- :class:`~streamkit.ops.replay.Replayer` re-reads a failed batch and invokes a function with
  the event the runner built.

Nothing here is imported by ``import streamkit``.
"""

from __future__ import annotations

__all__: list[str] = []
