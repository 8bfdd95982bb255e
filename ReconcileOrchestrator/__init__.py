"""Orchestrator: the singleton reconciliation / re-index pass lives in shared.reconcile_flow."""

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import log_context
from shared.reconcile_flow import orchestrate
from shared.settings import RECONCILE_INSTANCE_ID

_episode = df.Orchestrator.create(orchestrate)


def main(context: func.OrchestrationContext) -> str:
    with log_context(instance_id=RECONCILE_INSTANCE_ID):
        return _episode(context)
