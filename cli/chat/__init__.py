"""The terminal chat front-end: `lathe chat` and its rich rendering of a session's events.
"""
