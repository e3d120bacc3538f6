"""The monitor measured on the simulator's stream (simulate.py): recall and precision per
typology, beside a simple baseline (the large-value rules alone), written as a markdown table.

- recall of a typology variant: the share of its instances that an alert of the matching
  typology touches (shares a transfer with it);
- precision of a detector: the share of its alerts that touch some laundering instance (of
  any typology: a fan-out alert on a scatter-gather's source is a true catch, not a false one);
- the baseline: the share of instances that any large-value report touches.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from zhijin.aml.detect import Typology
from zhijin.aml.memory import MemoryMonitor
from zhijin.aml.simulate import SimulationParams, Stream, batches, simulate

__all__ = ["Evaluation", "evaluate", "markdown"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    params: SimulationParams
    movements: int
    recall: dict[str, tuple[int, int]]  # variant -> (detected, instances)
    baseline_recall: dict[str, tuple[int, int]]
    precision: dict[str, tuple[int, int]]  # detector typology -> (touching, alerts)


def evaluate(params: SimulationParams | None = None) -> Evaluation:
    params = params or SimulationParams()
    stream = simulate(params)
    monitor = _run(stream)
    by_transfer: dict[str, list[str]] = defaultdict(list)  # transfer -> alert typologies
    for alert in monitor.alerts.values():
        for transfer_id in alert.transfer_ids:
            by_transfer[transfer_id].append(alert.typology)
    laundering = {t for instance in stream.instances for t in instance.transfer_ids}
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    baseline: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for instance in stream.instances:
        kinds = {k for t in instance.transfer_ids for k in by_transfer.get(t, ())}
        recall[instance.variant][1] += 1
        baseline[instance.variant][1] += 1
        recall[instance.variant][0] += instance.typology in kinds
        baseline[instance.variant][0] += Typology.LARGE_VALUE in kinds
    precision: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for alert in monitor.alerts.values():
        precision[alert.typology][1] += 1
        precision[alert.typology][0] += any(t in laundering for t in alert.transfer_ids)
    return Evaluation(
        params=params,
        movements=len(stream.movements),
        recall={k: (v[0], v[1]) for k, v in sorted(recall.items())},
        baseline_recall={k: (v[0], v[1]) for k, v in sorted(baseline.items())},
        precision={k: (v[0], v[1]) for k, v in sorted(precision.items())},
    )


def _run(stream: Stream) -> MemoryMonitor:
    from zhijin.aml.simulate import BANK

    monitor = MemoryMonitor()
    for customer, opened in stream.opened.items():
        monitor.open_account(owner=customer, member=BANK, opened_at_ms=opened)
    for batch in batches(stream):
        monitor.apply(batch)
    return monitor


def _ratio(pair: tuple[int, int]) -> str:
    hit, total = pair
    return "-" if total == 0 else f"{hit / total:.3f} ({hit}/{total})"


def markdown(result: Evaluation) -> str:
    p = result.params
    lines = [
        f"Simulated with seed {p.seed}: {p.customers} customers, {p.merchants} merchants, "
        f"{p.days} days, {p.payments_per_day} ordinary payments a day; "
        f"{result.movements} movements in all.",
        "",
        "| typology variant | recall (matching alert) | recall of the baseline (large-value rules alone) |",
        "|---|---|---|",
    ]
    for variant, pair in result.recall.items():
        held = " (held out)" if variant == "cycle_long" else ""
        lines.append(
            f"| {variant}{held} | {_ratio(pair)} | {_ratio(result.baseline_recall[variant])} |"
        )
    lines += [
        "",
        "| detector | alerts | precision (touching a laundering instance) |",
        "|---|---|---|",
    ]
    for typology, pair in result.precision.items():
        lines.append(f"| {typology} | {pair[1]} | {_ratio(pair)} |")
    return "\n".join(lines) + "\n"
