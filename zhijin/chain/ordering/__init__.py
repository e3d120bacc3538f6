"""Ordering services: who decides the order of transactions (solo here; JetStream in cluster mode)."""
