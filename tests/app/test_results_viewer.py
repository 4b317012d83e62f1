"""The Results page's weight-map viewer and warnings (AppTest): the sign in words, the zoom switch,
the background named, the training-accuracy warning once."""

from __future__ import annotations

from tests.app._helpers import assert_no_traceback, error_texts, go_to, run_from_configure, start_app
from ui import state

ZOOM_KEY = "results_zoom_to_mask"


def test_the_viewer_says_which_class_positive_weights_point_to_and_zooms_to_the_mask():
    at = start_app()
    go_to(at, "configure.py")
    result = run_from_configure(at)
    assert tuple(result.classes) == ("cat", "face")
    texts = [m.value for m in at.markdown]
    assert "**Positive weights: face; negative weights: cat.**" in texts
    assert at.toggle(key=ZOOM_KEY).value is True
    assert any("Background: the data set's anatomy" in c.value for c in at.caption)
    at.toggle(key=ZOOM_KEY).set_value(False)
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)


def test_the_training_accuracy_warning_is_shown_once():
    at = start_app()
    go_to(at, "configure.py")
    at.selectbox(key=state.W_CV).set_value("train")
    at.run()
    run_from_configure(at)
    about_training = [w.value for w in at.warning if "train" in w.value.lower() and "meaningless" in w.value.lower()
                      or "same samples the classifier was trained on" in w.value]
    assert len(about_training) == 1, about_training
