"""The composition root: the one package that imports every domain.

Layers read chain < platform < domains < node.  `modules.MODULES` lists the domains' manifests
in order; the contract registry, projections, routers, CLI, demo seeding, node services and
permissions are derived from it here, and nowhere else names a domain.
"""
