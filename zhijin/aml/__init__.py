"""AML monitoring on the committed payment stream: large-value reports at the PBOC thresholds,
suspicious-pattern alerts, cases and their filings, and the regulator's view.

Unlike the inline fraud engine (`zhijin/risk/`), which decides before a payment is submitted,
AML runs after the fact on committed blocks, as a projection: it never blocks block production.
"""

from zhijin.aml.codes import AmlError, Code

__all__ = ["AmlError", "Code"]
