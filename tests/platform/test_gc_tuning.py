"""ZHIJIN_GC: the node process's collector settings (zhijin/platform/gc_tuning.py).  Each case
runs in a fresh interpreter: the settings are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import gc, json, sys
from zhijin.platform.gc_tuning import tune_gc
before = gc.get_threshold()
first = tune_gc(sys.argv[1])
second = tune_gc(sys.argv[1])
print(json.dumps({"before": before, "after": gc.get_threshold(), "first": first,
                  "second": second, "frozen": gc.get_freeze_count()}))
"""


def _run(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_tuned_freezes_start_up_objects_and_raises_the_thresholds_once() -> None:
    from zhijin.platform.gc_tuning import GC_THRESHOLDS_TUNED

    seen = _run("tuned")
    assert seen["first"] is True and seen["second"] is False
    assert tuple(seen["after"]) == GC_THRESHOLDS_TUNED != tuple(seen["before"])
    assert seen["frozen"] > 1_000  # the imported modules' objects at least


def test_default_leaves_cpython_alone() -> None:
    seen = _run("default")
    assert seen["first"] is False and seen["after"] == seen["before"]
    assert seen["frozen"] == 0


@pytest.mark.parametrize("bad", ["fast", "", "TUNED"])
def test_an_unknown_mode_is_refused_by_the_settings(bad: str, tmp_path) -> None:
    from pydantic import ValidationError

    from zhijin.node.settings import Settings

    with pytest.raises(ValidationError):
        Settings(data=tmp_path, gc=bad)
