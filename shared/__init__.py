"""The pipeline's core: everything the four function folders delegate to.

Nothing here imports ``azure.functions``, so every module can be tested (and
reused by the local host) without a Functions worker.
"""
