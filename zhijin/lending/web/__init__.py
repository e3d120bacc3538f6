"""Lending's pages (pages.py) and their templates (templates/lending/): docs/web.md."""
