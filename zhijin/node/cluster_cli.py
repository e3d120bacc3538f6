"""`zhijin cluster ...`: lay out, start, inspect and stop a local multi-member network."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from zhijin.platform.i18n import cli_text as _cli_text

cluster_app = typer.Typer(help=_cli_text("cli.help.cluster"), no_args_is_help=True)

NetworkOption = Annotated[
    Path,
    typer.Option(
        "--dir", envvar="ZHIJIN_CLUSTER_DIR", help=_cli_text("cli.help.cluster.network_option")
    ),
]
DEFAULT_DIR = Path("./var-cluster")
STATUS_INTERVAL_S = 5.0


@cluster_app.command("up", help=_cli_text("cli.help.cluster.up"))
def up(
    directory: NetworkOption = DEFAULT_DIR,
    members: Annotated[
        int, typer.Option(min=1, max=16, help=_cli_text("cli.help.zhijin.chain_init.members"))
    ] = 3,
    nats: Annotated[int, typer.Option(help=_cli_text("cli.help.cluster.up.nats"))] = 3,
    chain_id: Annotated[
        str, typer.Option(help=_cli_text("cli.help.zhijin.chain_init.chain_id"))
    ] = "zhijin-cluster",
    detach: Annotated[bool, typer.Option(help=_cli_text("cli.help.cluster.up.detach"))] = False,
) -> None:
    """Start NATS servers and one peer per member; lays the network out on first use."""
    from zhijin.node.cluster import NETWORK_FILE, LocalNetwork, init_network

    if not (directory / NETWORK_FILE).exists():
        init_network(directory, members=members, nats=nats, chain_id=chain_id)
    network = LocalNetwork(directory)
    try:
        network.start()
    except BaseException:
        network.stop()
        raise
    typer.echo(_cli_text("cli.cluster.up", path=directory, nats=", ".join(network.nats_urls)))
    for index, url in enumerate(network.urls):
        typer.echo(
            _cli_text(
                "cli.cluster.peer", index=index, url=url, config=directory / f"peer{index}.json"
            )
        )
    if detach:
        return
    typer.echo(_cli_text("cli.cluster.ctrl_c"))
    stopping = False

    def interrupt(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, interrupt)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
        typer.echo(_cli_text("cli.cluster.stopped"))


@cluster_app.command("status", help=_cli_text("cli.help.cluster.status"))
def status(
    directory: NetworkOption = DEFAULT_DIR,
    as_json: Annotated[
        bool, typer.Option("--json", help=_cli_text("cli.help.cluster.status.as_json"))
    ] = False,
) -> None:
    """Each peer's height, block hash, state root, final height and lag."""
    from zhijin.node.cluster import NETWORK_FILE, peer_statuses

    layout = json.loads((directory / NETWORK_FILE).read_text())
    rows = peer_statuses([p["url"] for p in layout["peers"]])
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'peer':<26} {'height':>7} {'final':>7} {'lag':>4}  block hash        state root")
    for row in rows:
        if "error" in row:
            typer.echo(f"{row['url']:<26} down ({row['error']})")
            continue
        halted = "  HALTED: " + row["halted"]["reason"] if row.get("halted") else ""
        typer.echo(
            f"{row['url']:<26} {row['height']:>7} {row['final_height']:>7} {row['lag']:>4}  "
            f"{row['block_hash'][:16]}  {row['state_root'][:16]}{halted}"
        )


@cluster_app.command("down", help=_cli_text("cli.help.cluster.down"))
def down(directory: NetworkOption = DEFAULT_DIR) -> None:
    """Stop a network started with `cluster up --detach`."""
    from zhijin.node.cluster import stop_by_pid_file

    typer.echo(_cli_text("cli.cluster.processes_stopped", count=stop_by_pid_file(directory)))


# -- joining and governance ---------------------------------------------------------------------

ProposalFile = Annotated[Path, typer.Argument(help=_cli_text("cli.help.cluster.proposal_file"))]
GenesisOption = Annotated[
    Path, typer.Option("--genesis", help=_cli_text("cli.help.cluster.genesis_option"))
]
OutOption = Annotated[Path, typer.Option("--out", help=_cli_text("cli.help.cluster.out_option"))]
ValidHoursOption = Annotated[
    int,
    typer.Option(
        "--valid-hours", min=1, max=168, help=_cli_text("cli.help.cluster.valid_hours_option")
    ),
]
QuorumOption = Annotated[
    int | None, typer.Option("--quorum-weight", help=_cli_text("cli.help.cluster.quorum_option"))
]
PROPOSAL_VALID_HOURS = 24
SUBMIT_VALIDITY_MS = 10 * 60 * 1000
SUBMIT_TIMEOUT_S = 60.0


@cluster_app.command("join", help=_cli_text("cli.help.cluster.join"))
def join(
    data: Annotated[Path, typer.Option("--data", help=_cli_text("cli.help.cluster.join.data"))],
    genesis: GenesisOption,
    nats: Annotated[
        list[str], typer.Option("--nats", help=_cli_text("cli.help.cluster.join.nats"))
    ],
    config: Annotated[
        Path, typer.Option("--config", help=_cli_text("cli.help.cluster.join.config"))
    ],
    peer: Annotated[
        list[str] | None, typer.Option("--peer", help=_cli_text("cli.help.cluster.join.peer"))
    ] = None,
    host: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.join.host"))] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    key: Annotated[
        Path | None, typer.Option("--key", help=_cli_text("cli.help.cluster.join.key"))
    ] = None,
    replicas: Annotated[int, typer.Option(help=_cli_text("cli.help.cluster.join.replicas"))] = 3,
) -> None:
    """Lay out a new member's peer; prints the DID the members must admit."""
    from zhijin.node.cluster import lay_out_joining_peer

    _, member = lay_out_joining_peer(
        data,
        genesis_path=genesis,
        config_path=config,
        nats_urls=nats,
        peers=peer or [],
        host=host,
        port=port,
        key_path=key,
        stream_replicas=replicas,
    )
    typer.echo(_cli_text("cli.cluster.peer_laid_out", path=data, did=member.did))
    typer.echo(_cli_text("cli.cluster.peer_next", did=member.did, config=config))


def _write_proposal(
    out: Path, genesis: Path, action: str, params: dict[str, Any], valid_hours: int, pid: str | None
) -> None:
    import uuid

    from zhijin.chain.genesis import Genesis
    from zhijin.chain.governance import governance_args, make_proposal
    from zhijin.chain.node import now_ms

    proposal = make_proposal(
        chain_id=Genesis.load(genesis).chain_id,
        action=action,
        params=params,
        proposal_id=pid or f"p-{uuid.uuid4().hex}",
        valid_until_ms=now_ms() + valid_hours * 3600 * 1000,
    )
    out.write_text(json.dumps(governance_args(proposal, []), indent=2) + "\n")
    typer.echo(
        _cli_text(
            "cli.cluster.proposal_written", proposal=proposal.proposal_id, action=action, path=out
        )
    )


ProposalIdOption = Annotated[
    str | None, typer.Option("--proposal-id", help=_cli_text("cli.help.cluster.proposal_id_option"))
]


@cluster_app.command("propose-member", help=_cli_text("cli.help.cluster.propose_member"))
def propose_member(
    genesis: GenesisOption,
    out: OutOption,
    did: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_member.did"))],
    name: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_member.name"))],
    role: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_member.role"))],
    weight: Annotated[int, typer.Option(min=1, max=1000)] = 1,
    quorum_weight: QuorumOption = None,
    valid_hours: ValidHoursOption = PROPOSAL_VALID_HOURS,
    proposal_id: ProposalIdOption = None,
) -> None:
    """Propose admitting a member (add_member)."""
    params: dict[str, Any] = {"did": did, "name": name, "role": role, "weight": weight}
    if quorum_weight is not None:
        params["quorum_weight"] = quorum_weight
    _write_proposal(out, genesis, "add_member", params, valid_hours, proposal_id)


@cluster_app.command("propose-removal", help=_cli_text("cli.help.cluster.propose_removal"))
def propose_removal(
    genesis: GenesisOption,
    out: OutOption,
    did: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_removal.did"))],
    quorum_weight: QuorumOption = None,
    valid_hours: ValidHoursOption = PROPOSAL_VALID_HOURS,
    proposal_id: ProposalIdOption = None,
) -> None:
    """Propose removing a member (remove_member)."""
    params: dict[str, Any] = {"did": did}
    if quorum_weight is not None:
        params["quorum_weight"] = quorum_weight
    _write_proposal(out, genesis, "remove_member", params, valid_hours, proposal_id)


@cluster_app.command("propose-weight", help=_cli_text("cli.help.cluster.propose_weight"))
def propose_weight(
    genesis: GenesisOption,
    out: OutOption,
    did: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_weight.did"))],
    weight: Annotated[
        int, typer.Option(min=1, max=1000, help=_cli_text("cli.help.cluster.propose_weight.weight"))
    ],
    quorum_weight: QuorumOption = None,
    valid_hours: ValidHoursOption = PROPOSAL_VALID_HOURS,
    proposal_id: ProposalIdOption = None,
) -> None:
    """Propose changing a member's voting weight (set_weight)."""
    params: dict[str, Any] = {"did": did, "weight": weight}
    if quorum_weight is not None:
        params["quorum_weight"] = quorum_weight
    _write_proposal(out, genesis, "set_weight", params, valid_hours, proposal_id)


@cluster_app.command("propose-quorum", help=_cli_text("cli.help.cluster.propose_quorum"))
def propose_quorum(
    genesis: GenesisOption,
    out: OutOption,
    weight: Annotated[
        int,
        typer.Option(
            "--quorum-weight", min=1, help=_cli_text("cli.help.cluster.propose_quorum.weight")
        ),
    ],
    valid_hours: ValidHoursOption = PROPOSAL_VALID_HOURS,
    proposal_id: ProposalIdOption = None,
) -> None:
    """Propose changing the quorum weight (set_quorum)."""
    _write_proposal(out, genesis, "set_quorum", {"quorum_weight": weight}, valid_hours, proposal_id)


@cluster_app.command("propose-contract", help=_cli_text("cli.help.cluster.propose_contract"))
def propose_contract(
    genesis: GenesisOption,
    out: OutOption,
    name: Annotated[str, typer.Option(help=_cli_text("cli.help.cluster.propose_contract.name"))],
    activation_height: Annotated[
        int,
        typer.Option(
            "--activation-height",
            min=1,
            help=_cli_text("cli.help.cluster.propose_contract.activation_height"),
        ),
    ],
    version: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.cluster.propose_contract.version"))
    ] = None,
    valid_hours: ValidHoursOption = PROPOSAL_VALID_HOURS,
    proposal_id: ProposalIdOption = None,
) -> None:
    """Propose activating a contract from a height (activate_contract); refuses a contract
    this installation's code lacks, since no node could run it."""
    from zhijin.node.modules import default_registry

    code = default_registry().versions()
    version = version or code.get(name)
    if version is None or code.get(name) != version:
        typer.echo(
            f"contract_code_missing: this code has no {name} version {version} "
            f"(it runs {sorted(code.items())})",
            err=True,
        )
        raise typer.Exit(2)
    params = {"name": name, "version": version, "activation_height": activation_height}
    _write_proposal(out, genesis, "activate_contract", params, valid_hours, proposal_id)


def _load_proposal(path: Path) -> tuple[Any, list[Any]]:
    from zhijin.chain.governance import Approval, Proposal

    document = json.loads(path.read_text())
    proposal = Proposal.from_json(document["proposal"])
    approvals = [Approval.from_json(a) for a in document.get("approvals", [])]
    return proposal, approvals


@cluster_app.command("approve", help=_cli_text("cli.help.cluster.approve"))
def approve(
    proposal_file: ProposalFile,
    key: Annotated[Path, typer.Option("--key", help=_cli_text("cli.help.cluster.approve.key"))],
) -> None:
    """Sign a proposal with this member's key and add the approval to the file."""
    from zhijin.chain.crypto import KeyPair
    from zhijin.chain.governance import approve as sign_approval
    from zhijin.chain.governance import governance_args

    proposal, approvals = _load_proposal(proposal_file)
    member = KeyPair.load(key)
    approvals = [a for a in approvals if a.signer != member.did]
    approvals.append(sign_approval(member, proposal))
    proposal_file.write_text(json.dumps(governance_args(proposal, approvals), indent=2) + "\n")
    typer.echo(
        f"approved {proposal.proposal_id} ({proposal.action}) as {member.did}: "
        f"{len(approvals)} approval(s)"
    )


@cluster_app.command("submit", help=_cli_text("cli.help.cluster.submit"))
def submit(
    proposal_file: ProposalFile,
    key: Annotated[Path, typer.Option("--key", help=_cli_text("cli.help.cluster.submit.key"))],
    peer: Annotated[str, typer.Option("--peer", help=_cli_text("cli.help.cluster.submit.peer"))],
) -> None:
    """Send the approved proposal as a governance tx and wait for its result (exit 1 if it
    failed, with the contract's code)."""
    import httpx

    from zhijin.chain.crypto import KeyPair
    from zhijin.chain.governance import governance_args
    from zhijin.chain.node import now_ms
    from zhijin.chain.tx import make_body, sign_tx

    proposal, approvals = _load_proposal(proposal_file)
    sender = KeyPair.load(key)
    body = make_body(
        chain_id=proposal.chain_id,
        sender=sender.did,
        nonce=time.time_ns() // 1000,
        contract="governance",
        method=proposal.action,
        args=governance_args(proposal, approvals),
        valid_until=now_ms() + SUBMIT_VALIDITY_MS,
    )
    response = httpx.post(
        f"{peer.rstrip('/')}/api/v1/chain/txs?wait=true",
        json=sign_tx(sender, body),
        timeout=SUBMIT_TIMEOUT_S,
    )
    result = response.json()
    typer.echo(json.dumps(result, indent=2))
    if response.status_code >= 300 or result.get("status") != "committed":
        raise typer.Exit(1)
