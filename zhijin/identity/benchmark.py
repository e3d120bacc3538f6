"""Identity figures: login latency with production Argon2 parameters, and verifiable
credential issue/verify rates.  Prints one JSON line (the bench/ convention):

    python -m zhijin.identity.benchmark [--logins 20] [--credentials 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from zhijin.chain.crypto import KeyPair
from zhijin.identity.did import Resolver
from zhijin.identity.errors import AuthenticationFailed
from zhijin.identity.passwords import PRODUCTION_PARAMS, PasswordHasher
from zhijin.identity.ratelimit import MemoryRateLimitStore
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.tables import create_tables
from zhijin.identity.vc import issue_credential, verify_credential
from zhijin.platform.vault import Vault, VaultKeys

_PASSWORD = "correct horse battery staple"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def login_latency(logins: int, data_dir: Path) -> dict[str, Any]:
    engine = create_engine(f"sqlite:///{data_dir / 'identity.db'}")
    create_tables(engine)
    clock_ms = [1_750_000_000_000]
    service = IdentityService(
        engine=engine,
        vault=Vault(VaultKeys.generate()),
        hasher=PasswordHasher(PRODUCTION_PARAMS),
        clock=lambda: clock_ms[0],
        rate_limits=MemoryRateLimitStore(),
    )
    source = RequestSource(ip="192.0.2.1", device_id="bench-device")
    service.register(login="bench-user", password=_PASSWORD, kind="individual", source=source)
    ok_ms, unknown_ms = [], []
    for i in range(logins):
        clock_ms[0] += 3_600_000  # stay clear of rate limits
        start = time.perf_counter()
        service.login(login="bench-user", password=_PASSWORD, source=source)
        ok_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        with contextlib.suppress(AuthenticationFailed):
            service.login(login=f"nobody-{i}", password=_PASSWORD, source=source)
        unknown_ms.append((time.perf_counter() - start) * 1000)
    engine.dispose()
    return {
        "argon2": {
            "time_cost": PRODUCTION_PARAMS.time_cost,
            "memory_kib": PRODUCTION_PARAMS.memory_kib,
            "parallelism": PRODUCTION_PARAMS.parallelism,
        },
        "login_ms_p50": round(statistics.median(ok_ms), 1),
        "login_ms_p95": round(_percentile(ok_ms, 0.95), 1),
        "login_ms_p99": round(_percentile(ok_ms, 0.99), 1),
        "logins": logins,
        "unknown_user_ms_p50": round(statistics.median(unknown_ms), 1),
    }


def credential_rates(count: int) -> dict[str, Any]:
    issuer = KeyPair.generate()
    vm = f"{issuer.did}#{issuer.did.removeprefix('did:key:')}"
    now_ms = 1_750_000_000_000
    start = time.perf_counter()
    issued = [
        issue_credential(
            issuer_key=issuer,
            issuer=issuer.did,
            verification_method=vm,
            credential_id=f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            types=("KycCredential",),
            subject={
                "id": "did:example:holder",
                "kycLevel": "verified",
                "kycCommitment": "ab" * 32,
            },
            now_ms=now_ms,
        )
        for i in range(count)
    ]
    issue_s = time.perf_counter() - start
    resolver = Resolver()
    start = time.perf_counter()
    for credential in issued:
        verify_credential(
            credential, resolver=resolver, now_ms=now_ms, trusted_issuer=lambda _: True
        )
    verify_s = time.perf_counter() - start
    return {
        "credentials": count,
        "issue_per_s": round(count / issue_s),
        "verify_per_s": round(count / verify_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--credentials", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {"bench": "identity", **login_latency(args.logins, Path(tmp))}
    figures.update(credential_rates(args.credentials))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
