"""The app's side of the fMRI Decoding Lab: everything the Streamlit pages share.

``ui`` holds session state, the caches, uploads, the current data set, the
analysis glue, history and share links that the pages in ``pages/`` use.
Streamlit may be imported here and in ``pages/`` only; the analysis itself
lives in :mod:`decoding_core`, which never imports ``ui``.
"""
