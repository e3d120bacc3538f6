"""The notary's page (pages.py) and its templates (templates/notary/): docs/web.md."""
