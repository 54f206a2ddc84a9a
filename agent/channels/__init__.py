"""What the front-ends share to present a session (a plan as a checklist, result tables, job progress, step
edits) and the chat channels' adapters (the web UI's history and figures beside `app.py`). The terminal chat
lives with the CLI in `cli/chat/`. They only present and ask; they never plan, approve on their own or run a tool.
"""
