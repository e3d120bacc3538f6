"""Platform plumbing: settings, the data directory, the request edge, projections, and the
`Host` protocol the domains name; the node host and the app are the root's (zhijin/node)."""
