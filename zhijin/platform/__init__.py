"""Platform plumbing: settings, the node runtime, the app factory, demo data."""
