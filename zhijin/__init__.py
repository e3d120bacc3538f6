"""zhijin (智金): a smart-finance service platform on a permissioned consortium blockchain."""

__version__ = "0.1.0"
