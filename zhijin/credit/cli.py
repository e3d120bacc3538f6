"""`zhijin credit ...`: train, evaluate and check the fairness of models; register and approve
them (maker-checker: two officers); save policies; decide, list and replay decisions; show a
customer's behavioural score.

Commands that touch the chain open the data directory's node, or, when a server holds it (or
`--url` names a node), go through that node's HTTP API: with `--token` (a staff user's API token:
the chain records that user as the officer, maker-checker included) or else the data
directory's operator token (the member itself, recorded as "operator").  Opened locally, the
officer is `--officer` (a staff user id, exactly as the API records the signed-in user).

Outputs are JSON; errors and refusals are sentences in the terminal's language (LC_ALL,
LC_MESSAGES, LANG; docs/i18n.md) with the stable code, from the "messages" catalog.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from zhijin.platform.cli_options import DEFAULT_DATA, DataOption
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["credit_app"]

credit_app = typer.Typer(help=_cli_text("cli.help.credit"), no_args_is_help=True)

# train, evaluate and fairness read applicants, not a node: their --data is the CSV file.
TrainingDataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        exists=True,
        dir_okay=False,
        help=_cli_text("cli.help.credit.training_data_option"),
    ),
]
OfficerOption = Annotated[
    str | None, typer.Option("--officer", help=_cli_text("cli.help.credit.officer_option"))
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="ZHIJIN_URL", help=_cli_text("cli.help.credit.url_option")),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="ZHIJIN_TOKEN", help=_cli_text("cli.help.credit.token_option")),
]
API = "/api/v1/credit"
ACCEPT_LANGUAGE = {"zh_CN": "zh-CN", "en": "en"}  # the node answers in the terminal's language
HTTP_TIMEOUT_S = 60.0
SEED_DEFAULT = 20_260_601  # training.DEFAULT_SEED, without importing LightGBM for --help


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _locale() -> str:
    from zhijin.platform.i18n import environment_locale

    return environment_locale(os.environ)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(_cli_text("cli.error", message=message), err=True)
    raise typer.Exit(code)


def _refused(code: str, detail: str, diagnostic: str, errors: list[dict[str, Any]]) -> None:
    """A refusal: its code and sentence for people, each wrong field in the terminal's
    language, and the developer's sentence when it says more; exit 1."""
    typer.echo(_cli_text("cli.refused", code=code, detail=detail), err=True)
    key = "message_zh" if _locale() == "zh_CN" else "message_en"
    for error in errors:
        typer.echo(f"  {error['field']}: {error.get(key) or error.get('message_en')}", err=True)
    if diagnostic and diagnostic != detail:
        typer.echo(_cli_text("cli.diagnostic", diagnostic=diagnostic), err=True)
    raise typer.Exit(1)


@dataclass(frozen=True, slots=True)
class _Remote:
    """A running node's credit API, as the CLI calls it."""

    client: Any  # httpx.Client with the base URL, the token and the terminal's language

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            _fail(_cli_text("cli.credit.node_unreachable", url=str(self.client.base_url),
                            reason=str(exc)))  # fmt: skip
        body = _json_body(response)
        if response.status_code == 202:  # committed; the query tables had not caught up
            _print_json(body)
            _fail(_cli_text("cli.credit.not_yet_visible", tx_hash=body.get("tx_hash") or "-"))
        if response.status_code >= 400:
            problem = body if isinstance(body, dict) else {}
            _refused(
                str(problem.get("code") or response.status_code),
                str(problem.get("detail") or response.reason_phrase),
                str(problem.get("diagnostic") or ""),
                list(problem.get("errors") or []),
            )
        return body


def _json_body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:500]}


@dataclass(frozen=True, slots=True)
class _Node:
    """Where a command runs: this data directory's node, opened here, or a running node."""

    platform: Any = None
    gateway: Any = None
    remote: _Remote | None = None


@contextmanager
def _remote(base_url: str, token: str) -> Iterator[_Node]:
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Accept-Language": ACCEPT_LANGUAGE[_locale()]}
    with httpx.Client(base_url=base_url, headers=headers, timeout=HTTP_TIMEOUT_S) as client:
        yield _Node(remote=_Remote(client))


def _read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        _fail(_cli_text("cli.credit.missing_file", what=what, path=str(path)))
    raise AssertionError("unreachable")


@contextmanager
def _node(ctx: typer.Context, data: Path, url: str | None, token: str | None) -> Iterator[_Node]:
    """The data directory's node, or (when a server holds it, or `--url` names one) its API;
    a refusal either way is shown in the terminal's language (`_refused`)."""
    from zhijin.chain.errors import ZhijinError
    from zhijin.platform.data_dir import DataDirError
    from zhijin.platform.gateway import MemberGateway
    from zhijin.platform.host import cli_root
    from zhijin.platform.problems import problem_detail

    if url is None:
        try:
            root = cli_root(ctx)
            platform = root.open_host(root.settings(data))
        except DataDirError as exc:
            if exc.code != "data_dir_in_use":
                _fail(exc.message)
            server = json.loads(_read_secret(data / "server.json", "server.json"))
            url = str(server["url"])
        else:
            with platform:
                try:
                    yield _Node(platform=platform, gateway=MemberGateway(platform.node))
                except ZhijinError as exc:
                    detail = problem_detail(_locale(), exc.code, exc.details, exc.message)
                    _refused(exc.code, detail, exc.message, list(exc.details.get("errors", [])))
            return
    bearer = token or _read_secret(data / "operator-token", "operator-token")
    with _remote(url, bearer) as node:
        yield node


def _run(
    ctx: typer.Context,
    data: Path,
    url: str | None,
    token: str | None,
    *,
    local: Callable[[Any, Any], Any],
    remote: Callable[[_Remote], Any],
) -> Any:
    """Run a command here or over HTTP, print its JSON answer, and return it."""
    with _node(ctx, data, url, token) as node:
        answer = local(node.platform, node.gateway) if node.remote is None else remote(node.remote)
    _print_json(answer)
    return answer


def _officer(officer: str | None, node_is_remote: bool) -> str:
    if node_is_remote:
        if officer is not None:  # the API records the token's user; never a name it is told
            _fail(_cli_text("cli.credit.officer_over_http"))
        return ""
    if not officer:
        _fail(_cli_text("cli.credit.officer_needed"))
    return str(officer)


def _dataset(data_file: Path | None) -> Any:
    from zhijin.credit import datasets

    return (
        datasets.german_credit() if data_file is None else datasets.platform_applicants(data_file)
    )


@credit_app.command("train", help=_cli_text("cli.help.credit.train"))
def credit_train(
    out: Annotated[Path, typer.Option("--out", help=_cli_text("cli.help.credit.credit_train.out"))],
    data_file: TrainingDataOption = None,
    seed: Annotated[
        int, typer.Option(help=_cli_text("cli.help.credit.credit_train.seed"))
    ] = SEED_DEFAULT,
    trainer: Annotated[
        str, typer.Option(help=_cli_text("cli.help.credit.credit_train.trainer"))
    ] = "",
) -> None:
    """Cross-validate, report fairness and train both models on FILE (or German Credit), with
    the figures in the model card; write one model file and print its hash and figures.
    Register it next (`zhijin credit register`), then a second officer approves it."""
    from zhijin.credit.artifact import save_model
    from zhijin.credit.report import build_model

    built = build_model(_dataset(data_file), seed=seed, trainer=trainer)
    sha = save_model(built.model, out)
    _print_json({"file": str(out), "sha256": sha, "evaluation": built.evaluation.to_json()})


@credit_app.command("evaluate", help=_cli_text("cli.help.credit.evaluate"))
def credit_evaluate(
    data_file: TrainingDataOption = None,
    seed: Annotated[
        int, typer.Option(help=_cli_text("cli.help.credit.credit_evaluate.seed"))
    ] = SEED_DEFAULT,
) -> None:
    """Stratified 5-fold cross-validation of both models: AUC, KS, Gini, Brier, calibration."""
    from zhijin.credit.evaluation import cross_validate

    _print_json(cross_validate(_dataset(data_file), seed=seed).to_json())


@credit_app.command("fairness", help=_cli_text("cli.help.credit.fairness"))
def credit_fairness(
    data_file: TrainingDataOption = None,
    seed: Annotated[
        int, typer.Option(help=_cli_text("cli.help.credit.credit_evaluate.seed"))
    ] = SEED_DEFAULT,
    markdown: Annotated[
        bool, typer.Option(help=_cli_text("cli.help.credit.credit_fairness.markdown"))
    ] = False,
) -> None:
    """Approval rate, AUC and bad rate by age band and by sex/marital status, with the
    disparate-impact ratio."""
    from zhijin.credit.fairness import fairness_for, render_markdown

    report = fairness_for(_dataset(data_file), seed=seed)
    if markdown:
        typer.echo(render_markdown(report))
    else:
        _print_json(report.to_json())


@credit_app.command("register", help=_cli_text("cli.help.credit.register"))
def credit_register(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    officer: OfficerOption = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Register FILE's SHA-256 on chain, trained by the officer; a second officer approves it."""
    from zhijin.credit import service

    def remote(r: _Remote) -> Any:
        _officer(officer, True)
        octets = {"Content-Type": "application/octet-stream"}
        return r.call("POST", "/models", content=file.read_bytes(), headers=octets)

    _run(
        ctx, data, url, token,
        local=lambda p, g: service.register_model(
            p, g, trainer=_officer(officer, False), path=file
        ),
        remote=remote,
    )  # fmt: skip


def _model_action(
    ctx: typer.Context, action: str, sha256: str, officer: str | None, data: Path,
    url: str | None, token: str | None,
) -> None:  # fmt: skip
    from zhijin.credit import service

    def local(p: Any, g: Any) -> Any:
        who = _officer(officer, False)
        if action == "approve":
            return service.approve_model(p, g, sha256_hex=sha256, approver=who)
        return service.retire_model(p, g, sha256_hex=sha256, officer=who)

    def remote(r: _Remote) -> Any:
        _officer(officer, True)
        return r.call("POST", f"/models/{quote(sha256, safe='')}/{action}")

    _run(ctx, data, url, token, local=local, remote=remote)


@credit_app.command("approve", help=_cli_text("cli.help.credit.approve"))
def credit_approve(
    ctx: typer.Context,
    sha256: Annotated[str, typer.Argument(help=_cli_text("cli.help.credit.credit_approve.sha256"))],
    officer: OfficerOption = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Approve a registered model as the officer (refused when they trained it)."""
    _model_action(ctx, "approve", sha256, officer, data, url, token)


@credit_app.command("retire", help=_cli_text("cli.help.credit.retire"))
def credit_retire(
    ctx: typer.Context,
    sha256: Annotated[str, typer.Argument(help=_cli_text("cli.help.credit.credit_approve.sha256"))],
    officer: OfficerOption = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Retire a model: it decides no more; its past decisions stay provable."""
    _model_action(ctx, "retire", sha256, officer, data, url, token)


@credit_app.command("models", help=_cli_text("cli.help.credit.models"))
def credit_models(
    ctx: typer.Context,
    after: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_models.after"))
    ] = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Registered models, one page (locally every member's; over HTTP what the token may see)."""
    from zhijin.credit import service

    params = {} if after is None else {"after_sha256": after}
    _run(
        ctx, data, url, token,
        local=lambda p, _g: service.list_models(p, member=None, after_sha256=after),
        remote=lambda r: r.call("GET", "/models", params=params),
    )  # fmt: skip


@credit_app.command("policy", help=_cli_text("cli.help.credit.policy"))
def credit_policy(
    ctx: typer.Context,
    policy_id: Annotated[
        str, typer.Argument(help=_cli_text("cli.help.credit.credit_policy.policy_id"))
    ],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    version: Annotated[int, typer.Option(help=_cli_text("cli.help.credit.credit_policy.version"))],
    officer: OfficerOption = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Save FILE (JSON) as version VERSION of the policy; a contradictory one is refused."""
    from zhijin.credit import service

    rules = _json_file(file)

    def remote(r: _Remote) -> Any:
        _officer(officer, True)
        body = {"version": version, "rules": rules}
        return r.call("POST", f"/policies/{quote(policy_id, safe='')}", json=body)

    _run(
        ctx, data, url, token,
        local=lambda p, g: service.save_policy(
            p, g, policy_id=policy_id, version=version, rules=rules,
            officer=_officer(officer, False),
        ),
        remote=remote,
    )  # fmt: skip


def _json_file(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        _fail(_cli_text("cli.credit.not_json", path=str(file), reason=str(exc)))


@credit_app.command("decide", help=_cli_text("cli.help.credit.decide"))
def credit_decide(
    ctx: typer.Context,
    decision_id: Annotated[
        str, typer.Argument(help=_cli_text("cli.help.credit.credit_decide.decision_id"))
    ],
    applicant: Annotated[
        Path, typer.Argument(help=_cli_text("cli.help.credit.credit_decide.applicant"))
    ],
    policy_id: Annotated[
        str, typer.Option("--policy", help=_cli_text("cli.help.credit.credit_policy.policy_id"))
    ] = "retail",
    subject: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_decide.subject"))
    ] = None,
    officer: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_decide.officer"))
    ] = None,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Decide on an applicant with the approved model; the record is anchored on chain."""
    from zhijin.credit import service

    fields = json.load(sys.stdin) if str(applicant) == "-" else _json_file(applicant)
    body = {"decision_id": decision_id, "policy_id": policy_id, "applicant": fields}
    if subject is not None:
        body["subject"] = subject

    def remote(r: _Remote) -> Any:
        _officer(officer, True)
        return r.call("POST", "/decisions", json=body)

    _run(
        ctx, data, url, token,
        local=lambda p, g: service.decide_for(
            p, g, decision_id=decision_id, policy_id=policy_id, applicant=fields,
            subject=subject, requested_by=officer or "operator",
        ),
        remote=remote,
    )  # fmt: skip


@credit_app.command("decisions", help=_cli_text("cli.help.credit.decisions"))
def credit_decisions(
    ctx: typer.Context,
    subject: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_decisions.subject"))
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_decisions.outcome"))
    ] = None,
    before: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.credit.credit_decisions.before"))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Decisions, newest first, one page."""
    from zhijin.credit import service

    params: dict[str, Any] = {"limit": limit}
    for name, value in (("subject", subject), ("outcome", outcome), ("before", before)):
        if value is not None:
            params[name] = value
    _run(
        ctx, data, url, token,
        local=lambda p, _g: service.list_decisions(
            p, member=None, subject=subject, before=before, limit=limit, outcome=outcome
        ),
        remote=lambda r: r.call("GET", "/decisions", params=params),
    )  # fmt: skip


@credit_app.command("replay", help=_cli_text("cli.help.credit.replay"))
def credit_replay(
    ctx: typer.Context,
    decision_id: Annotated[
        str, typer.Argument(help=_cli_text("cli.help.credit.credit_replay.decision_id"))
    ],
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Re-score a decision and compare; exit 1 when anything differs (and say what)."""
    from zhijin.credit import service

    report = _run(
        ctx, data, url, token,
        local=lambda p, _g: service.replay(p, decision_id=decision_id),
        remote=lambda r: r.call("POST", f"/decisions/{quote(decision_id, safe='')}/replay"),
    )  # fmt: skip
    if not report["same"]:
        _fail(_cli_text("cli.credit.replay_differs", decision_id=decision_id))


@credit_app.command("score", help=_cli_text("cli.help.credit.score"))
def credit_score(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help=_cli_text("cli.help.credit.credit_score.subject"))],
    data: DataOption = DEFAULT_DATA,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A customer's behavioural score now, each rule's contribution, and why it changed."""
    from zhijin.credit import service

    _run(
        ctx, data, url, token,
        local=lambda p, _g: service.behaviour(p, subject=subject),
        remote=lambda r: r.call("GET", f"/scores/{quote(subject, safe='')}"),
    )  # fmt: skip
