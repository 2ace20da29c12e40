"""The operations: each thing a person can do to the data, written once.

Every surface (REST routes, UI handlers, agent tools, CLI verbs, job handlers) is a thin adapter
that builds a :class:`~ops.caller.Caller` and calls a function here. An operation checks the one
written policy (:mod:`ops.policy`) inside itself, validates its input (names are data:
:mod:`ops.names`), opens the change batch, writes through ``store/``, records the event in the
same transaction (the outbox in ``store.events``) and commits once (:mod:`ops.unit`). Errors are
the types of :mod:`ops.errors`; each surface maps them to its own way of saying no (an HTTP
status, a message in the UI, a tool error the model reads, a CLI exit code).

Layering: ``store`` <- ``ops`` <- ``tools`` <- ``agent`` <- ``ui`` <- ``server``. ops imports only
``store``; model work (detectors for the label check, the audit's models) comes in as callables.
"""
