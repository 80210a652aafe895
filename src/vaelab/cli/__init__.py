"""Command-line interface: thin wrappers that parse, call the library and print where results went.

Every module of this package that defines ``register(group)`` adds its commands to ``vaelab``.
"""
