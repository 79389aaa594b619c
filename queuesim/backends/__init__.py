"""Backends: the objects that own every state transition of a queue (see :mod:`queuesim.backends.base`)."""
