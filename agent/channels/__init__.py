"""Front-ends that turn a person's messages into `agent.Session` calls and render its events: the terminal
chat here, the Chainlit app in `app.py`. They only present and ask; they never plan, approve on their own
or run a tool themselves.
"""
