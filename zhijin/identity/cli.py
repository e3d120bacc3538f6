"""`zhijin identity ...` and `zhijin audit ...`: operator commands of the identity domain.

These open the platform database and the vault directly (not the node), so `create-admin` and
`audit verify` work beside a running server.  `rotate-vault-key` rewraps every data key and
`rotate-index-secret` recomputes every blind index and keyed digest; both need the node
stopped (a running server holds the old key set in memory) and a key file (a key given in
ZHIJIN_VAULT_KEY is rotated where it is kept).  Neither prints a key.
"""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from zhijin.chain.files import touch_private
from zhijin.identity.settings import vault_key_path
from zhijin.platform.cli_options import DEFAULT_DATA, DataOption
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["audit_app", "identity_app"]

identity_app = typer.Typer(help=_cli_text("cli.help.identity"), no_args_is_help=True)
audit_app = typer.Typer(help=_cli_text("cli.help.identity.audit"), no_args_is_help=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(_cli_text("cli.error", message=message), err=True)
    raise typer.Exit(code)


def _settings(data: Path) -> Any:
    """The core fields and identity's own section (from ZHIJIN_*): all these commands read."""
    from zhijin.identity.settings import IdentitySettings
    from zhijin.platform.settings import compose_settings

    return compose_settings((IdentitySettings,))(data=data)


def _identity(settings: Any) -> Any:
    from zhijin.chain.store import make_engine
    from zhijin.identity.setup import build_identity

    engine = make_engine(settings.platform_database_url_resolved())
    return build_identity(settings, engine)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@identity_app.command("create-admin", help=_cli_text("cli.help.identity.create_admin"))
def create_admin(
    login: Annotated[
        str, typer.Option("--login", help=_cli_text("cli.help.identity.create_admin.login"))
    ],
    data: DataOption = DEFAULT_DATA,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help=_cli_text("cli.help.identity.create_admin.password_stdin")
        ),
    ] = False,
) -> None:
    """Create an administrator of this node's member.  The password is prompted for (or read
    from stdin), never taken from the command line where `ps` and shell history would see it."""
    from zhijin.chain.errors import ZhijinError
    from zhijin.platform.data_dir import load_genesis, load_node_key

    settings = _settings(data)
    try:
        member = load_node_key(settings, load_genesis(settings)).did
        identity = _identity(settings)
        password = _read_password(password_stdin)
        user = identity.bootstrap_admin(login=login, password=password, member_did=member)
    except ZhijinError as exc:
        _fail(exc.message)
        return
    identity.store.engine.dispose()
    typer.echo(
        _cli_text("cli.identity.admin_created", login=user.login, user_id=user.id, member=member)
    )


@identity_app.command("new-vault-key", help=_cli_text("cli.help.identity.new_vault_key"))
def new_vault_key(
    out: Annotated[
        Path, typer.Option("--out", help=_cli_text("cli.help.identity.new_vault_key.out"))
    ],
) -> None:
    """Create a vault key file for production (a locally generated one is refused there)."""
    from zhijin.identity.setup import write_vault_keys
    from zhijin.platform.vault import VaultKeys

    if out.exists():
        _fail(_cli_text("cli.identity.key_file_exists", path=out))
    write_vault_keys(out, VaultKeys.generate(), origin="operator")
    typer.echo(_cli_text("cli.identity.vault_key_written", path=out))


def _next_key_id(existing: set[str]) -> str:
    number = 1
    while f"k{number}" in existing:
        number += 1
    return f"k{number}"


@identity_app.command("rotate-vault-key", help=_cli_text("cli.help.identity.rotate_vault_key"))
def rotate_vault_key(
    data: DataOption = DEFAULT_DATA,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1, max=500, help=_cli_text("cli.help.identity.rotate_vault_key.batch_rows")
        ),
    ] = 500,
) -> None:
    """Rewrap every data key under a new master key.

    Step 1 adds a new active key to the key file (the old one stays); step 2 rewraps records in
    batches; step 3 removes the old keys once nothing is wrapped under them.  Interrupted, it
    resumes with the same new key; run again when done, it rotates again.
    """
    from zhijin.chain.store import make_engine
    from zhijin.identity.service import wall_clock_ms
    from zhijin.identity.setup import write_vault_keys
    from zhijin.identity.tables import create_tables
    from zhijin.platform.vault import Vault, VaultStore

    settings = _settings(data)
    lock, keys, origin = _key_file_for_rotation(settings)
    path = vault_key_path(settings)
    if len(keys.master_keys) == 1:
        keys = keys.with_new_key(_next_key_id(set(keys.master_keys)))
        write_vault_keys(path, keys, origin=origin)
        typer.echo(_cli_text("cli.identity.master_key_added", key=keys.active_key_id, path=path))
    else:
        typer.echo(_cli_text("cli.identity.master_key_resuming", key=keys.active_key_id))
    engine = make_engine(settings.platform_database_url_resolved())
    try:
        create_tables(engine)
        store = VaultStore(engine)
        vault = Vault(keys)
        remaining = store.count_not_under(keys.active_key_id)
        typer.echo(_cli_text("cli.identity.records_to_rewrap", count=remaining))

        def progress(done: int) -> None:
            typer.echo(_cli_text("cli.identity.rewrapped", done=done, total=remaining))

        store.rotate_master_key(
            vault, now_ms=wall_clock_ms(), batch_rows=batch_rows, progress=progress
        )
        left = store.count_not_under(keys.active_key_id)
        if left:
            _fail(_cli_text("cli.identity.records_left", count=left))
        # only_active_key keeps the previous index secret of an unfinished index rotation.
        write_vault_keys(path, keys.only_active_key(), origin=origin)
        typer.echo(_cli_text("cli.identity.master_key_done", key=keys.active_key_id, path=path))
    finally:
        engine.dispose()
        lock.close()


@identity_app.command(
    "rotate-index-secret", help=_cli_text("cli.help.identity.rotate_index_secret")
)
def rotate_index_secret(
    ctx: typer.Context,
    data: DataOption = DEFAULT_DATA,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1, max=500, help=_cli_text("cli.help.identity.rotate_index_secret.batch_rows")
        ),
    ] = 500,
) -> None:
    """Recompute every blind index and keyed digest under a new index secret.

    Step 1 adds a new index secret to the key file and keeps the old one as previous (lookups
    try both meanwhile, so a node started on a half-done rotation still finds everyone); step 2
    recomputes, in batches, the vault's blind indexes, the login lockout counters and the known
    devices, saving its progress; step 3 removes the old secret.  Interrupted, it resumes with
    the same new secret; run again when done, it rotates again.
    """
    from zhijin.chain.errors import ZhijinError
    from zhijin.chain.store import make_engine
    from zhijin.identity.service import wall_clock_ms
    from zhijin.identity.setup import rotate_index_secret as rotate
    from zhijin.identity.setup import write_vault_keys
    from zhijin.identity.tables import create_tables
    from zhijin.platform.host import cli_root
    from zhijin.platform.vault import Vault, VaultStore

    settings = _settings(data)
    lock, keys, origin = _key_file_for_rotation(settings)
    path = vault_key_path(settings)
    if keys.previous_index_secret is None:
        keys = keys.with_new_index_secret()
        write_vault_keys(path, keys, origin=origin)
        typer.echo(_cli_text("cli.identity.index_secret_added", path=path))
    else:
        typer.echo(_cli_text("cli.identity.index_secret_resuming"))
    engine = make_engine(settings.platform_database_url_resolved())
    try:
        create_tables(engine)

        def progress(stage: str, done: int, total: int) -> None:
            typer.echo(f"  {stage}: {done}/{total}")

        try:
            rotate(
                engine,
                Vault(keys),
                clock=wall_clock_ms,
                batch_rows=batch_rows,
                progress=progress,
                schemas=dict(cli_root(ctx).vault_schemas()),
            )
        except ZhijinError as exc:
            _fail(f"{exc.message}; fix it and run the command again to resume")
        write_vault_keys(path, keys.without_previous_index_secret(), origin=origin)
        VaultStore(engine).finish_index_rotation()
        typer.echo(_cli_text("cli.identity.index_secret_done", path=path))
    finally:
        engine.dispose()
        lock.close()


def _key_file_for_rotation(settings: Any) -> tuple[Any, Any, str]:
    """The node lock (held until closed), the keys of the key file and its origin; refuses a
    key given in ZHIJIN_VAULT_KEY, a running node, or an unreadable key file."""
    from zhijin.identity.setup import IdentitySettingsError, load_vault_keys

    if settings.vault_key is not None:
        _fail("the vault key comes from ZHIJIN_VAULT_KEY: rotate it where it is stored")
    if not settings.data.is_dir():
        _fail(f"no data directory {settings.data} (give --data or ZHIJIN_DATA)")
    path = vault_key_path(settings)
    if not path.is_file():
        _fail(f"no vault key file at {path}: nothing to rotate")
    lock = _node_lock(settings.data)
    try:
        keys = load_vault_keys(settings)
    except IdentitySettingsError as exc:
        lock.close()
        _fail(exc.message)
    origin = str(json.loads(path.read_text()).get("origin", "operator"))
    return lock, keys, origin


def _node_lock(data: Path) -> Any:
    touch_private(data / "node.lock")
    handle = open(data / "node.lock", "a+")  # noqa: SIM115 - held while the command runs
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        _fail(f"a node runs on {data}: stop it before rotating vault keys")
    return handle


@audit_app.command("verify", help=_cli_text("cli.help.identity.audit.verify"))
def audit_verify(ctx: typer.Context, data: DataOption = DEFAULT_DATA) -> None:
    """Walk the audit log's hash chain and compare it with the heads anchored on chain; names
    the first changed, removed or unreadable entry and the suspect range, and exits 1 if
    anything is wrong.  Reports how many entries lie after the last anchor: a removal among
    them cannot be detected."""
    from zhijin.chain.errors import ZhijinError
    from zhijin.chain.store import ChainStore, make_engine
    from zhijin.identity.anchoring import anchored_heads, audit_verify_json, confirmed_heads
    from zhijin.identity.tables import create_tables
    from zhijin.platform.audit import AuditLog
    from zhijin.platform.data_dir import load_genesis, load_node_key
    from zhijin.platform.host import cli_root

    settings = _settings(data)
    try:
        member = load_node_key(settings, load_genesis(settings)).did
    except ZhijinError as exc:
        _fail(exc.message)
        return
    engine = make_engine(settings.platform_database_url_resolved())
    store = ChainStore(settings.chain_database_url())
    try:
        create_tables(engine)
        notary = cli_root(ctx).anchor_reader(store, engine)
        anchors, unconfirmed = confirmed_heads(
            notary, anchored_heads(notary, owner=member), owner=member
        )
        report = AuditLog(engine).verify(anchors=anchors)
    finally:
        engine.dispose()
        store.close()
    typer.echo(json.dumps(audit_verify_json(report, anchors, unconfirmed), indent=2))
    if not report.ok:
        _fail(f"audit log entry {report.first_bad_seq}: {report.problem}")
    if unconfirmed:
        _fail(
            f"{len(unconfirmed)} anchored heads in the notary's query table are not on chain "
            "(the table was changed): run `zhijin projections verify`"
        )
