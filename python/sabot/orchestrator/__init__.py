"""Services of the Sabot engine: the shuffle service (sabot.orchestrator.shuffle)."""
