"""The command line's shared machinery, so that every command looks and fails alike.

- ``house``: the command classes (help layout, ``-h``, one-line errors with a hint,
  exit 2) that every command of the app is given, whoever declared it;
- ``options``: the options several commands share (``--policy``, ``--format``,
  ``--output``, ``--color``...), their completions and their checks;
- ``outputs``: where reports go, and writing them without losing anything.

Importing this package costs only typer: ``lint`` in a pipe must stay light.
"""
