"""Persistence: table models, the engine and its transactions, and the repositories.

Nothing outside ``app.db`` writes SQL. Services receive a ``Session`` (one per request,
one transaction) and hand it to repositories; nothing below the request commits.
"""
