"""The pure core: canonical URIs, URLs, encodings and the decision vocabulary.

Nothing here does I/O, reads the clock or the environment, or logs; every scheme and
every shell builds on it, and it imports nothing from them.
"""
