"""Orchestrator: the deterministic workflow (extract and preview, then store) lives in shared.orchestration."""

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import fields_from_orchestration, log_context
from shared.orchestration import orchestrate

_episode = df.Orchestrator.create(orchestrate)


def main(context: func.OrchestrationContext) -> str:
    with log_context(**fields_from_orchestration(context.body)):
        return _episode(context)
