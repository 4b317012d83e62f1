"""Server-side infrastructure of the app: the job gate and the session registry.

These pieces keep one Streamlit server healthy when several browser sessions
share it (how many analyses run at once, how long an idle session's data is
kept). They do not import Streamlit and are used only by the app.
"""
