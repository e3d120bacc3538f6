"""Lending benchmark, no arguments, one JSON line per case, well under 3 minutes on 2 cores.

1. `application_to_disbursed`: on a real node (solo orderer, SQLite, projections), an
   automatically approved application and its disbursement through the service, each a tx
   waited for until the query tables show it (the "millisecond lending" path: decision facts
   in, two blocks, money in the borrower's account): p50/p99, against a baseline measured in
   the same run on the same node, one payments transfer through the same gateway.
2. `month_end_collections`: 10,000 disbursed loans whose first instalment falls due, collected
   in one block by the contract runtime over in-memory state (the keeper's txs, executed as
   the node executes them, without the database): collections/s, against a baseline in the
   same run, 10,000 plain payments transfers executed the same way.

Figures of record are the ratios (the machine's speed swings 2x).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

APPLICATIONS = int(os.environ.get("ZHIJIN_BENCH_LENDING_APPLICATIONS", "60"))
LOANS = int(os.environ.get("ZHIJIN_BENCH_LENDING_LOANS", "10000"))
DAY_MS = 24 * 3600 * 1000

PRODUCT: dict[str, Any] = {
    "product_id": "bench-12",
    "currency": "CNY",
    "lpr_tenor": "1y",
    "spread_bps": 150,
    "term_months": 12,
    "method": "equal_instalment",
    "day_count": "30_360",
    "grace_days": 3,
    "penalty_uplift_bps": 5_000,
    "compound_overdue_interest": True,
    "late_fee_minor": 2_000,
    "allocation_order": ["penalty", "fee", "interest", "principal"],
    "min_amount_minor": 100_000,
    "max_amount_minor": 50_000_000,
    "auto_approval": {"min_score": 0, "max_dti_bps": 100_000, "max_amount_minor": 50_000_000,
                      "min_kyc_level": 0},
    "collateral_ratio_bps": 0,
    "buckets": [{"name": "M1", "from_days": 1}, {"name": "M2", "from_days": 31},
                {"name": "M3+", "from_days": 61}],
    "default_after_days": 90,
    "income_account_id": "bench-income",
}  # fmt: skip


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p99_ms": round(p99, 2)}


# -- 1. a real node ------------------------------------------------------------------------------


def _node_case() -> dict[str, Any]:
    from zhijin.chain.codec import canonical, sha256
    from zhijin.lending import service
    from zhijin.lending.expected import DecisionFacts, LendingPorts
    from zhijin.node.runtime import Platform, init_data_dir
    from zhijin.node.settings import Settings
    from zhijin.platform.gateway import MemberGateway

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            data=Path(scratch), block_interval_ms=2, password_hashing="test",
            projector="thread", audit_anchor_interval_s=0, lending_keeper_interval_s=0,
        )  # fmt: skip
        init_data_dir(settings, members=1)
        with Platform(settings) as platform:
            gateway = MemberGateway(platform.node)
            member = platform.node.key.did
            borrower = "did:key:z6MkBenchBorrower"

            def submit(contract: str, method: str, args: dict[str, Any]) -> None:
                result = gateway.submit(contract, method, args)
                assert result["status"] == "ok", result

            submit("payments", "create_accounts", {"accounts": [
                {"id": "bench-settle", "owner": member, "currency": "CNY", "kind": "settlement"},
                {"id": "bench-income", "owner": member, "currency": "CNY", "kind": "settlement"},
                {"id": "bench-cust", "owner": borrower, "currency": "CNY", "kind": "customer"},
            ]})  # fmt: skip
            submit("credit", "register_model", {"sha256": "a" * 64, "name": "m", "version": "1",
                                                "card_sha256": "c" * 64, "trainer": "t"})  # fmt: skip
            submit("credit", "approve_model", {"sha256": "a" * 64, "approver": "a"})
            from zhijin.credit.policy import parse_policy  # noqa: F401  (credit's shape)

            rules = {
                "currency": "CNY", "approve": {"points_min": 600, "pd_ppm_max": 200_000},
                "decline": {"points_below": 450, "pd_ppm_from": 500_000},
                "tiers": [{"points_min": 450, "points_max": 1_000, "limit_minor": 5_000_000,
                           "rate_bps": 1_000, "price_tier": "A"}],
                "income_multiple": None, "thin_file_behaviour_min": None,
            }  # fmt: skip
            submit("credit", "set_policy", {"policy_id": "p", "version": 1, "rules": rules,
                                            "officer": "o"})  # fmt: skip
            digest = sha256(canonical({"bench": True})).hex()
            submit("credit", "anchor_decision", {"decision_id": "d", "record_sha256": digest,
                                                 "model_sha256": "a" * 64, "policy_id": "p",
                                                 "policy_version": 1})  # fmt: skip
            facts = DecisionFacts("d", digest, member, borrower, "approve", 700, 5_000_000,
                                  "CNY", ())  # fmt: skip

            class _Decisions:
                def decision(self, decision_id: str) -> DecisionFacts | None:
                    return facts if decision_id == "d" else None

            platform.lending_ports = LendingPorts(  # type: ignore[attr-defined]
                decisions=_Decisions(),
                kyc=platform.lending_ports.kyc,  # type: ignore[attr-defined]
            )
            service.set_lpr(platform, gateway, tenor="1y", rate_bps=310, effective_day="2024-01-22")
            service.create_product(platform, gateway, terms=PRODUCT, officer="maker")
            service.approve_product(platform, gateway, product_id="bench-12", officer="checker")
            lending, baseline = [], []
            for index in range(APPLICATIONS):
                started = time.perf_counter()
                submit("payments", "create_transfers", {"transfers": [
                    {"id": f"base-{index}", "debit_account_id": "bench-settle",
                     "credit_account_id": "bench-cust", "amount": 100, "currency": "CNY"}]})  # fmt: skip
                baseline.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                loan = service.apply(
                    platform, gateway, loan_id=f"bench-{index}", product_id="bench-12",
                    borrower=borrower, applied_by="bench", amount_minor=1_200_000,
                    decision_id="d", monthly_income_minor=2_000_000, monthly_debt_minor=0,
                    kyc_level=0, repayment_account_id="bench-cust",
                )["loan"]  # fmt: skip
                assert loan["status"] == "approved", loan
                service.disburse(platform, gateway, loan_id=f"bench-{index}")
                lending.append((time.perf_counter() - started) * 1000)
    ours, base = _percentiles(lending), _percentiles(baseline)
    return {
        "case": "application_to_disbursed",
        "applications": APPLICATIONS,
        **ours,
        "baseline": "one payments transfer through the same gateway, waited for",
        "baseline_p50_ms": base["p50_ms"],
        "baseline_p99_ms": base["p99_ms"],
        "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 2),
    }


# -- 2. the contract runtime over memory ---------------------------------------------------------


class _Chain:
    def __init__(self) -> None:
        from zhijin.chain.contract import MEMBER_PREFIX, ContractRegistry, Member
        from zhijin.chain.memory import MemoryState
        from zhijin.credit.contract import CREDIT_CONTRACT
        from zhijin.lending.contract import LENDING_CONTRACT
        from zhijin.payments.contract import PAYMENTS_CONTRACT

        self.bank = Member(did="did:key:z6MkBenchBank", name="Bank", role="bank", weight=1)
        self.state = MemoryState({MEMBER_PREFIX + self.bank.did: self.bank.to_json()})
        self.registry = ContractRegistry([PAYMENTS_CONTRACT, CREDIT_CONTRACT, LENDING_CONTRACT])
        self.time_ms = 1_700_000_000_000
        self.height = 0
        self.counter = 0

    def block(self, calls: list[tuple[str, str, dict[str, Any]]], advance_ms: int = 1_000) -> float:
        """Execute the calls as one block; returns the seconds the txs took to execute."""
        from zhijin.chain.contract import BlockInfo, BlockState, TxInfo, execute_tx, run_end_block

        self.height += 1
        self.time_ms += advance_ms
        block = BlockInfo(chain_id="bench", height=self.height, time_ms=self.time_ms)
        staged = BlockState(self.state)
        started = time.perf_counter()
        for contract, method, args in calls:
            self.counter += 1
            tx = TxInfo(tx_hash=hashlib.sha256(str(self.counter).encode()).hexdigest(),
                        sender=self.bank.did, signer=self.bank.did, nonce=self.counter,
                        contract=contract, method=method, vouched=False)  # fmt: skip
            outcome = execute_tx(self.registry, staged, tx, block, args)
            assert outcome.ok, (method, outcome.code, outcome.message)
        elapsed = time.perf_counter() - started
        run_end_block(self.registry, staged, block)
        self.state.commit(staged)
        return elapsed


def _collections_case() -> dict[str, Any]:
    chain = _Chain()
    bank = chain.bank.did
    accounts = [{"id": "settle", "owner": bank, "currency": "CNY", "kind": "settlement"},
                {"id": "bench-income", "owner": bank, "currency": "CNY", "kind": "settlement"}]  # fmt: skip
    accounts += [{"id": f"c{i}", "owner": f"did:key:z6MkB{i}", "currency": "CNY",
                  "kind": "customer"} for i in range(LOANS)]  # fmt: skip
    calls = [("payments", "create_accounts", {"accounts": accounts[i : i + 100]})
             for i in range(0, len(accounts), 100)]  # fmt: skip
    chain.block(calls)
    chain.block([
        ("credit", "register_model", {"sha256": "a" * 64, "name": "m", "version": "1",
                                      "card_sha256": "c" * 64, "trainer": "t"}),
        ("credit", "approve_model", {"sha256": "a" * 64, "approver": "a"}),
        ("credit", "set_policy", {"policy_id": "p", "version": 1, "officer": "o", "rules": {
            "currency": "CNY", "approve": {"points_min": 600, "pd_ppm_max": 200_000},
            "decline": {"points_below": 450, "pd_ppm_from": 500_000},
            "tiers": [{"points_min": 450, "points_max": 1_000, "limit_minor": 5_000_000,
                       "rate_bps": 1_000, "price_tier": "A"}],
            "income_multiple": None, "thin_file_behaviour_min": None}}),
        ("credit", "anchor_decision", {"decision_id": "d", "record_sha256": "e" * 64,
                                       "model_sha256": "a" * 64, "policy_id": "p",
                                       "policy_version": 1}),
        ("lending", "set_lpr", {"tenor": "1y", "rate_bps": 310, "effective_day": "2023-10-20"}),
        ("lending", "create_product", {**PRODUCT, "officer": "maker"}),
        ("lending", "approve_product", {"product_id": "bench-12", "officer": "checker"}),
    ])  # fmt: skip
    decision = {"decision_id": "d", "record_sha256": "e" * 64, "outcome": "approve",
                "score": 700, "dti_bps": 3_000, "kyc_level": 2}  # fmt: skip
    chain.block([("lending", "apply", {
        "loan_id": f"L{i}", "product_id": "bench-12", "borrower": f"did:key:z6MkB{i}",
        "applied_by": "bench", "amount_minor": 1_200_000, "decision": decision,
        "repayment_account_id": f"c{i}"}) for i in range(LOANS)])  # fmt: skip
    chain.block([("lending", "disburse", {"loan_id": f"L{i}"}) for i in range(LOANS)])
    # Month end: a block 31 days later, every loan's first instalment due.
    collect = [("lending", "collect", {"loan_id": f"L{i}", "instalment": 1}) for i in range(LOANS)]
    collected_s = chain.block(collect, advance_ms=31 * DAY_MS)
    transfers = [("payments", "create_transfers", {"transfers": [
        {"id": f"t{i}", "debit_account_id": f"c{i}", "credit_account_id": "settle",
         "amount": 100, "currency": "CNY"}]}) for i in range(LOANS)]  # fmt: skip
    baseline_s = chain.block(transfers)
    return {
        "case": "month_end_collections",
        "loans": LOANS,
        "keeper_block_s": round(collected_s, 2),
        "collections_per_s": round(LOANS / collected_s),
        "baseline": "the same number of single payments transfers, executed the same way",
        "baseline_transfers_per_s": round(LOANS / baseline_s),
        "ratio": round(baseline_s / collected_s, 3),
    }


def main() -> None:
    print(json.dumps(_collections_case()), flush=True)
    print(json.dumps(_node_case()), flush=True)


if __name__ == "__main__":
    main()
