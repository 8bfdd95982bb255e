"""Orchestrator: the singleton reconciliation / re-index pass lives in shared.reconcile_flow."""

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import log_context
from shared.reconcile_flow import orchestrate

_episode = df.Orchestrator.create(orchestrate)


def main(context: func.OrchestrationContext) -> str:
    with log_context():
        return _episode(context)
