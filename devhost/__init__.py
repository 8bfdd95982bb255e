"""A local stand-in for the Azure Functions host and its Durable Task extension.

Development and test tool only: it is not deployed (see .funcignore). It runs
the real function folders with the real azure-functions-durable SDK, speaking
the protocol described, with its public sources, in docs/host-protocol.md.
"""
