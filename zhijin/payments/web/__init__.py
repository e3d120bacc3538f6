"""Payments' pages (pages.py) and their templates (templates/payments/): docs/web.md."""
