"""Operator commands of ``beacon-otel``: ``doctor``, ``traces``, ``deploy-event``.

Each module exposes ``add_parser(subcommands)``, which registers its sub-command and sets
``run=<function taking the parsed args, returning the exit status>``.
"""
