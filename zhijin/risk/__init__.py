"""Risk: the inline fraud engine.  Every customer payment is scored before it goes to the chain
(payments' `PaymentScreen` port, injected by the composition root): features kept in memory,
rules as versioned data under maker-checker, an online anomaly model (River) and a supervised
model (LightGBM) trained on analysts' case verdicts, tiers as data.  See docs/risk.md."""

from zhijin.risk.permissions import RISK_PERMISSIONS

__all__ = ["RISK_PERMISSIONS"]
