"""Orchestrator: the deterministic extract-then-store workflow lives in shared.orchestration."""

import azure.durable_functions as df

from shared.orchestration import orchestrate

main = df.Orchestrator.create(orchestrate)
