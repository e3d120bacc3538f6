"""The contract's output is pinned byte for byte: a speed change must not change one byte.

The digest covers every state write (key and bytes), every tx result in both encodings, every
event and every error code and message of `golden_workload`, a fixed and varied workload.  It
was computed from the code before the contract's hot path was optimised (commit 87658f0); a
deliberate change of the contract's output changes it, with a version bump of the contract.
"""

from __future__ import annotations

from .golden_workload import run_workload

GOLDEN_DIGEST = "4c4a7884771641c27e5fa6e038763a912d495b2b3d150fe42105ee66653083f9"


def test_the_golden_workload_produces_exactly_the_pinned_bytes() -> None:
    assert run_workload() == GOLDEN_DIGEST
