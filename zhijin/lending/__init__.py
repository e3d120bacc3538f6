"""Smart-contract lending: loan products, the loan contract's lifecycle, exact repayment
schedules and the collections keeper (docs/lending.md)."""
