"""The commands of the command line, one module each.

``paracle_guard.cli`` names every command by its module here and imports a module
only when its command runs (or help lists it). Each module declares its command on
``app = command_app()``. The five scan commands (lint, image, container, compose,
k8s) say only which subjects to read: ``scan.run_scan`` loads the policy, evaluates,
writes the reports and leaves with the exit code.
"""
