"""The pipeline's core: everything the function folders at the top level delegate to.

Each folder (a starter, the orchestrator, an activity, a timer) is a thin adapter that parses
its binding and calls in here. Nothing here imports ``azure.functions``, so every module can be
tested (and reused by the local host) without a Functions worker.
"""
