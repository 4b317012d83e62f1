"""The app's side of the fMRI Decoding Lab: everything the Streamlit pages share.

Streamlit may be imported here and in ``pages/`` only; the analysis itself lives in
:mod:`decoding_core`, which never imports ``ui``. Importing a module of ``ui``
changes nothing in the process (`ui.startup.prepare_process` does that, once).

Modules
-------
state
    Every session-state key, its default, `init_state`.
feedback
    Errors, status boxes, progress bars and the queue as the user sees them.
session
    This browser session's own store and upload folder; the registry and its janitor.
cache
    The process-wide stores of heavy results, the raw-voxel cache, the job gate.
uploads
    The user's files: stored on disk at once, then loaded as a data set.
datasets
    The session's data set: built-in ones, adopting a loaded one.
analysis
    Masking, decoding and dummy baselines through the caches and the queue.
history
    The run history: where it is kept, recording runs, reading and exporting them.
links
    Shareable links: the configuration in the URL, and restoring one.
runs
    Permutation tests and sweeps, run step by step across script runs.
startup
    What the server process sets up once (malloc arenas, log lines).
server
    Infrastructure without Streamlit: the job gate, session stores, malloc tuning.
"""
