"""`zhijin credit ...` end to end on a data directory: register and approve (maker-checker),
a policy (a contradictory one refused), decide, list, replay (exit 1 when it differs), score."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.credit.helpers import APPLICANT, POLICY, policy
from tests.platform.live_server import LiveServer
from tests.platform.users import create_staff
from zhijin.cli import app
from zhijin.identity.rbac import Role

runner = CliRunner()


def zhijin(*args: str, lang: str = "en_US.UTF-8") -> tuple[int, str, str]:
    """The command in a terminal whose language is `lang` (LANG; docs/i18n.md)."""
    env = {"LANG": lang, "LC_ALL": "", "LC_MESSAGES": ""}
    result = runner.invoke(app, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_credit_commands_end_to_end(tmp_path: Path, model_file: Path) -> None:
    data = str(tmp_path / "var")
    assert zhijin("chain", "init", "--data", data, "--members", "1")[0] == 0
    code, out, _ = zhijin("credit", "register", str(model_file), "--officer", "u-maker",
                          "--data", data)  # fmt: skip
    assert code == 0, out
    sha = json.loads(out)["model"]["sha256"]
    code, _, err = zhijin("credit", "approve", sha, "--officer", "u-maker", "--data", data)
    assert code == 1 and "self_approval" in err
    assert zhijin("credit", "approve", sha, "--officer", "u-checker", "--data", data)[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(policy(decline={"points_below": 700, "pd_ppm_from": 450_000})))
    code, _, err = zhijin("credit", "policy", "retail", str(bad), "--version", "1",
                          "--officer", "u-risk", "--data", data)  # fmt: skip
    assert code == 1 and "policy_contradictory" in err and "is above approve.points_min" in err
    good = tmp_path / "policy.json"
    good.write_text(json.dumps(POLICY))
    assert zhijin("credit", "policy", "retail", str(good), "--version", "1", "--officer",
                  "u-risk", "--data", data)[0] == 0  # fmt: skip
    absurd = tmp_path / "absurd.json"
    absurd.write_text(json.dumps({**APPLICANT, "age_years": 300}))
    code, _, err = zhijin("credit", "decide", "cli-bad", str(absurd), "--data", data)
    assert code == 1 and "invalid_applicant" in err and "age_years" in err
    code, _, err = zhijin("credit", "decide", "cli-bad", str(absurd), "--data", data,
                          lang="zh_CN.UTF-8")  # fmt: skip
    assert code == 1 and "错误 [invalid_applicant]" in err and "age_years" in err
    code, _, err = zhijin("credit", "register", str(absurd), "--data", data)
    assert code == 1 and "--officer" in err  # opened locally, the officer must be named
    applicant = tmp_path / "applicant.json"
    applicant.write_text(json.dumps(APPLICANT))
    code, out, _ = zhijin("credit", "decide", "cli-1", str(applicant), "--data", data)
    assert code == 0, out
    decided = json.loads(out)
    assert decided["anchor"]["height"] is not None
    listed = json.loads(zhijin("credit", "decisions", "--data", data)[1])
    assert [d["decision"]["decision_id"] for d in listed["decisions"]] == ["cli-1"]
    code, out, _ = zhijin("credit", "replay", "cli-1", "--data", data)
    assert code == 0 and json.loads(out)["same"] is True
    # Change the stored record behind the service's back: the replay says so and exits 1.
    record = {
        **decided["decision"],
        "outcome": "approve" if decided["decision"]["outcome"] != "approve" else "decline",
    }
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'platform.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE credit_decisions SET record = :r WHERE decision_id = 'cli-1'"),
                     {"r": json.dumps(record)})  # fmt: skip
    engine.dispose()
    code, out, err = zhijin("credit", "replay", "cli-1", "--data", data)
    assert code == 1 and "does not replay" in err
    code, _, err = zhijin("credit", "replay", "cli-1", "--data", data, lang="zh_CN.UTF-8")
    assert code == 1 and "重放结果与记录不一致" in err
    assert [d["field"] for d in json.loads(out)["differences"]] == ["outcome"]
    code, out, _ = zhijin("credit", "score", "did:key:z6MkNobody", "--data", data)
    assert code == 0 and json.loads(out)["score"] == 500


def test_the_credit_commands_over_http_against_a_running_node(
    tmp_path: Path, model_file: Path
) -> None:
    """A server holds the data directory: the commands go through its API, as the token's
    user (maker-checker holds: the trainer's own approval is refused), in the terminal's
    language; `--url` reaches a node by its address."""
    live = LiveServer(tmp_path)
    try:
        data = str(tmp_path)
        (tmp_path / "server.json").write_text(json.dumps({"url": live.base}))
        client = SimpleNamespace(app=live.server.config.app)
        maker = create_staff(client, roles={Role.RISK_ANALYST})["Authorization"].split()[1]
        checker = create_staff(client, roles={Role.RISK_ANALYST})["Authorization"].split()[1]
        code, out, err = zhijin("credit", "register", str(model_file), "--token", maker,
                                "--data", data)  # fmt: skip
        assert code == 0, err
        model = json.loads(out)["model"]
        assert model["trainer"] != "operator"  # the token's user, as the API records it
        sha = model["sha256"]
        code, _, err = zhijin("credit", "approve", sha, "--token", maker, "--data", data,
                              lang="zh_CN.UTF-8")  # fmt: skip
        assert code == 1 and "sod_self_approval" in err and "错误" in err
        code, _, err = zhijin("credit", "approve", sha, "--officer", "u-x", "--token", checker,
                              "--data", data)  # fmt: skip
        assert code == 1 and "leave out --officer" in err
        assert zhijin("credit", "approve", sha, "--token", checker, "--data", data)[0] == 0
        good = tmp_path / "policy.json"
        good.write_text(json.dumps(POLICY))
        assert zhijin("credit", "policy", "retail", str(good), "--version", "1", "--token",
                      maker, "--data", data)[0] == 0  # fmt: skip
        applicant = tmp_path / "applicant.json"
        applicant.write_text(json.dumps(APPLICANT))
        # --url names the node; the operator token of the data directory acts as the member.
        code, out, err = zhijin("credit", "decide", "http-1", str(applicant), "--url", live.base,
                                "--data", data)  # fmt: skip
        assert code == 0, err
        outcome = json.loads(out)["decision"]["outcome"]
        listed = json.loads(zhijin("credit", "decisions", "--outcome", outcome, "--data", data)[1])
        assert [d["decision"]["decision_id"] for d in listed["decisions"]] == ["http-1"]
        code, out, _ = zhijin("credit", "replay", "http-1", "--data", data)
        assert code == 0 and json.loads(out)["same"] is True
        code, out, _ = zhijin("credit", "score", "did:key:z6MkNobodyOverHttp", "--data", data)
        assert code == 0 and json.loads(out)["score"] == 500
        code, _, err = zhijin("credit", "replay", "no-such", "--data", data)
        assert code == 1 and "decision_not_found" in err
        code, _, err = zhijin("credit", "models", "--token", "zt_forged", "--data", data)
        assert code == 1 and "session_invalid" in err
    finally:
        live.stop()
    code, _, err = zhijin("credit", "models", "--url", "http://127.0.0.1:9", "--data", data)
    assert code == 1 and "cannot reach the node" in err
