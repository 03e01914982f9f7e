"""One module per benchmark: its official annotation loader, lmms-eval's prompt text as named
constants, and its scoring. Each registers its tasks with :func:`salova.eval.registry.register_task`."""
