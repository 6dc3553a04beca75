"""The gateway as deployed: several processes (replicas, workers, nginx, Redis, PostgreSQL),
the deploy/ files, SIGTERM drain, the quickstart. No single module under src/ owns these."""
