"""Policy: the settings model, routing, the decision, header profiles and signing.

Pure like the core (the clock and request facts are passed in); it builds on the core
and the schemes and knows nothing of HTTP servers or files.
"""
