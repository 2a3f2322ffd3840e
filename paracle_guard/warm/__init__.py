"""The warm-start server: paracle-guard kept loaded, each command a fork of it.

``paracle-guard serve`` imports everything once and listens on a socket private
to its user; a command line that finds it hands over its arguments, environment,
working folder and standard streams, and a forked worker runs the command there
exactly as the command line would have. See docs/warm-start.md for what the
worker checks before it agrees to run a command for a client.
"""
