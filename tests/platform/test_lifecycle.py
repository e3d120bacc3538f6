"""One start/stop order for the solo node and the cluster peer (platform/lifecycle.py)."""

from __future__ import annotations

from typing import Any

from zhijin.platform.lifecycle import NodeLifecycle


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def part(self, name: str) -> Any:
        recorder = self

        class Part:
            def start(self) -> None:
                recorder.calls.append(f"{name}.start")

            def stop(self) -> None:
                recorder.calls.append(f"{name}.stop")

            def catch_up(self) -> None:
                recorder.calls.append(f"{name}.catch_up")

        return Part()

    def service(self, name: str, final_at: int | None) -> Any:
        recorder = self

        class Service:
            def start(self) -> None:
                recorder.calls.append(f"{name}.start")

            def stop(self) -> int | None:
                recorder.calls.append(f"{name}.stop")
                return final_at

        return Service()


def _lifecycle(recorder: _Recorder, services: list[Any]) -> NodeLifecycle:
    return NodeLifecycle(
        start_orderer=lambda: recorder.calls.append("orderer.start"),
        stop_orderer=lambda: recorder.calls.append("orderer.stop"),
        await_final=lambda height: recorder.calls.append(f"await_final({height})"),
        projections=recorder.part("projections"),
        notifications=recorder.part("notifications"),
        services=services,
        release=lambda: recorder.calls.append("release"),
    )


def test_start_runs_services_last_in_manifest_order() -> None:
    recorder = _Recorder()
    services = [recorder.service("anchorer", None), recorder.service("keeper", None)]
    _lifecycle(recorder, services).start()
    assert recorder.calls == [
        "orderer.start",
        "projections.catch_up",
        "projections.start",
        "notifications.start",
        "anchorer.start",
        "keeper.start",
    ]


def test_stop_waits_for_the_last_shutdown_write_then_catches_projections_up() -> None:
    recorder = _Recorder()
    services = [recorder.service("anchorer", 7), recorder.service("keeper", 5)]
    _lifecycle(recorder, services).stop()
    assert recorder.calls == [
        "keeper.stop",  # reverse manifest order
        "anchorer.stop",
        "await_final(7)",  # before the orderer stops: the anchor's block must become final
        "orderer.stop",
        "notifications.stop",
        "projections.stop",
        "projections.catch_up",  # the tables hold the shutdown anchor too
        "release",
    ]


def test_stop_without_shutdown_writes_does_not_wait() -> None:
    recorder = _Recorder()
    _lifecycle(recorder, [recorder.service("anchorer", None)]).stop()
    assert not any(call.startswith("await_final") for call in recorder.calls)


def test_both_hosts_build_the_modules_services_from_the_manifests(tmp_path: Any) -> None:
    from zhijin.identity.module import AnchorService
    from zhijin.lending.service import CollectionsKeeper
    from zhijin.node.runtime import Platform, init_data_dir
    from zhijin.node.settings import Settings
    from zhijin.payments.module import OpeningPolicyService
    from zhijin.payments.tables import PaymentsTables
    from zhijin.risk.service import RiskService

    settings = Settings(data=tmp_path / "var", password_hashing="test", projector="thread")
    init_data_dir(settings, members=1)
    platform = Platform(settings)
    try:
        assert [type(s) for s in platform.lifecycle.services] == [
            AnchorService,
            PaymentsTables,
            OpeningPolicyService,
            RiskService,
            CollectionsKeeper,
        ]
    finally:
        platform.stop()
