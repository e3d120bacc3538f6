"""The guestbook: the smallest complete domain, written to docs/adding-a-domain.md.

A member signs a short message under a client-chosen id; anyone lists the entries.  It has
every part the template asks for and nothing more, so a new domain can start from a copy.
Other domains would use only what `__all__` names.
"""

from tests.node.example_domain.module import MODULE

__all__ = ["MODULE"]
