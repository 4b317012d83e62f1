"""Server-side infrastructure of the app: the job gate, session stores, malloc tuning.

These pieces keep one Streamlit server healthy when several browser sessions
share it (how many analyses run at once, how long an idle session's data is
kept, how much freed memory the process keeps). They do not import Streamlit and
are used only by the app.

Modules
-------
jobs
    `JobGate`: at most N heavy jobs at once, the others queued in order.
sessions
    `SessionStore` and `SessionRegistry`: what one browser session owns, purged when it is gone.
memory
    glibc's malloc arenas and ``malloc_trim``.
"""
