"""Credit scoring: applicant fields, features, a scorecard and a gradient-boosted model, their
evaluation and fairness report, the model artifact and the fast scorer (docs/credit.md)."""
