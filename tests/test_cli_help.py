"""The `zhijin` command's help speaks the terminal's language (docs/i18n.md): the root, every
group, every command and every option of ours, zh-CN under a Chinese locale (LANG, LC_ALL or
ZHIJIN_LANG) and English under an English one.  Help text is rendered when the command starts,
so each language is a process of its own, run as people run it (`python -m zhijin`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every help text of the command tree, by command path and option, as that process renders it.
WALK = """
import json, typer.main
from zhijin.cli import app
OURS_NOT = {"help", "install_completion", "show_completion"}  # typer's own options
def walk(command, path, out):
    out[path] = command.help or ""
    for param in command.params:
        if param.name not in OURS_NOT:
            out[f"{path} --{param.name}"] = getattr(param, "help", None) or ""
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        walk(sub, f"{path} {name}", out)
    return out
print(json.dumps(walk(typer.main.get_command(app), "zhijin", {}), ensure_ascii=False))
"""


def _environ(**variables: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES",
                                                             "ZHIJIN_LANG")}  # fmt: skip
    return {**base, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **variables}


def _run(args: list[str], **variables: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_environ(**variables), capture_output=True,
        text=True, encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@cache
def _helps(*variables: tuple[str, str]) -> dict[str, str]:
    found: dict[str, str] = json.loads(_run(["-c", WALK], **dict(variables)))
    return found


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


@pytest.mark.parametrize(
    ("variables", "says", "not_says"),
    [
        ({"LANG": "zh_CN.UTF-8"},
         ["联盟链上的智慧金融", "信用评分：模型、策略、决策。", "─ 选项 ", "─ 命令 ", "显示此帮助并退出。",
          "为当前 shell 安装命令补全。"],
         ["smart finance on a consortium chain", "Credit scoring", "Options", "Commands",
          "Show this message", "Install completion"]),
        ({"LANG": "en_US.UTF-8"},
         ["smart finance on a consortium chain", "Credit scoring", "─ Options ", "─ Commands ",
          "Show this message and exit.", "Install completion for the current shell."],
         ["联盟链上的智慧金融", "信用评分", "选项", "显示此帮助"]),
        ({"LANG": "zh_CN.UTF-8", "ZHIJIN_LANG": "en"}, ["Credit scoring"], ["信用评分"]),
        ({"LC_ALL": "C.UTF-8", "ZHIJIN_LANG": "zh_CN"}, ["信用评分"], ["Credit scoring"]),
    ],
)  # fmt: skip
def test_zhijin_help_speaks_the_locale(
    variables: dict[str, str], says: list[str], not_says: list[str]
) -> None:
    shown = _run(["-m", "zhijin", "--help"], **variables)
    for text in says:
        assert text in shown
    for text in not_says:
        assert text not in shown


def test_a_commands_help_and_its_options_speak_the_locale() -> None:
    chinese = _run(["-m", "zhijin", "credit", "decisions", "--help"], LANG="zh_CN.UTF-8")
    assert "决策，最新的在前，一页。" in chinese and "上一页的 next_before" in chinese
    assert "[默认：50]" in chinese and "[环境变量：ZHIJIN_DATA]" in chinese  # typer's markers
    assert "显示此帮助并退出。" in chinese and "default" not in chinese
    english = _run(["-m", "zhijin", "credit", "decisions", "--help"], LANG="en_US.UTF-8")
    assert "Decisions, newest first, one page." in english
    assert "next page: the previous page's next_before" in english and "决策" not in english


def test_every_group_command_and_option_of_ours_has_help_in_both_languages() -> None:
    """No help left untranslated: every text differs between the two languages (or is the
    same in both catalogs, a format such as YYYY-MM-DD), each zh-CN one but those has Chinese,
    and no English one has."""
    chinese, english = _helps(("LANG", "zh_CN.UTF-8")), _helps(("LANG", "en_US.UTF-8"))
    assert chinese.keys() == english.keys() and len(chinese) > 150
    arguments = {path for path, text in english.items() if " --" in path and not text}
    untranslated = {
        path: text
        for path, text in chinese.items()
        if path not in arguments and (not text or (text == english[path] and _has_chinese(text)))
    }
    assert untranslated == {}
    english_only = {p: t for p, t in chinese.items() if t and t == english[p]}
    assert set(english_only.values()) <= {"YYYY-MM-DD"}, english_only
    assert [p for p, t in english.items() if _has_chinese(t) and p != "zhijin"] == []
    assert _helps(("LANG", "C.UTF-8"), ("ZHIJIN_LANG", "zh_CN")) == chinese
