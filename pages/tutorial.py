"""Tutorial: nilearn's decoding tutorial, step by step, live on the current data set."""

import streamlit as st

import app
from decoding_core import map_views, plotting, summaries
from decoding_core.config import DecodingConfig
from ui import analysis, datasets, feedback, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app

DATA_PAGE = "pages/data.py"
CONFIGURE_PAGE = "pages/configure.py"
RESULTS_PAGE = "pages/results.py"


def step(number: int, title: str, explanation: str, code: str, link: tuple) -> None:
    """Heading, explanation, the tutorial's code and a link to where the user changes it."""
    st.subheader(f"{number}. {title}")
    st.markdown(explanation)
    st.code(code, language="python")
    page, label = link
    st.page_link(page, label=label, icon=":material/arrow_forward:")


def data_code(dataset, mask_name: str) -> dict:
    """The code that names the data in steps 1, 3 and 10: the tutorial's download, or the user's files.

    For an upload the code loads the files under the names the user uploaded them with (shown
    as code, never as Markdown), with the label column picked on the Data page.
    """
    if st.session_state[state.DATASET_SPEC] != "upload":
        return {"load": "haxby_dataset = datasets.fetch_haxby()\nfmri_filename = haxby_dataset.func[0]\n"
                        "mask_filename = haxby_dataset.mask_vt[0]",
                "labels": 'behavioral = pd.read_csv(haxby_dataset.session_target[0], delimiter=" ")\n'
                          'conditions = behavioral["labels"]\nrun_label = behavioral["chunks"]\n'
                          'conditions.value_counts()',
                "background": "haxby_dataset.anat[0]"}
    names = st.session_state[state.UPLOAD_DISPLAY_NAMES]
    if names.get("run files"):
        return run_files_code(dataset, mask_name, names)
    load = ("from nilearn.image import mean_img\n"
            f"fmri_filename = {names.get('4D image', 'bold.nii.gz')!r}  # your 4D image\n")
    if mask_name == "uploaded" and "mask" in names:
        load += f"mask_filename = {names['mask']!r}  # your mask"
    else:
        load += ("from nilearn.masking import compute_epi_mask\n"
                 "mask_filename = compute_epi_mask(mean_img(fmri_filename))  # no mask uploaded")
    runs = f"run_label = behavioral[{dataset.run_column!r}]\n" if dataset.run_column else ""
    labels = (f"behavioral = pd.read_csv({names.get('labels', 'labels.txt')!r}, sep=None, engine=\"python\")\n"
              f"conditions = behavioral[{dataset.label_column!r}]\n{runs}conditions.value_counts()")
    background = repr(names["anatomy"]) if "anatomy" in names else "mean_img(fmri_filename)"
    return {"load": load, "labels": labels, "background": background}


def run_files_code(dataset, mask_name: str, names: dict) -> dict:
    """`data_code` for runs uploaded as one file each: the runs joined in order, labels read per run."""
    load = ("from nilearn.image import concat_imgs, mean_img\n"
            f"run_filenames = {list(names['run files'])!r}  # your runs, in run order\n"
            "fmri_filename = concat_imgs(run_filenames)  # one 4D image: the runs one after another\n")
    if mask_name == "uploaded" and "mask" in names:
        load += f"mask_filename = {names['mask']!r}  # your mask"
    else:
        load += ("from nilearn.masking import compute_epi_mask\n"
                 "mask_filename = compute_epi_mask(mean_img(fmri_filename))  # no mask uploaded")
    tables = list(names.get("run labels", ()))
    read = (f"pd.read_csv({tables[0]!r}, sep=None, engine=\"python\")" if len(tables) == 1 else
            f"pd.concat([pd.read_csv(name, sep=None, engine=\"python\") for name in {tables!r}], ignore_index=True)")
    labels = (f"behavioral = {read}\n"
              "# The runs come from the files: volume i of run k has run_label k.\n"
              "run_label = pd.Series([run for run, name in enumerate(run_filenames)\n"
              "                       for _ in range(load_img(name).shape[3])])\n"
              f"conditions = behavioral[{dataset.label_column!r}]\nconditions.value_counts()")
    labels = "from nilearn.image import load_img\n" + labels
    background = repr(names["anatomy"]) if "anatomy" in names else "mean_img(fmri_filename)"
    return {"load": load, "labels": labels, "background": background}


def scores_line(result) -> str:
    scores = ", ".join(f"{score:.3f}" for score in result.fold_scores)
    return f"[{scores}]  mean {result.mean_score:.3f} (chance {result.chance_level:.3f})"


def run_scheme(dataset, base_config, **changes):
    """The tutorial's decoding under one scheme (cached like any run)."""
    return analysis.run_decoding(dataset, base_config.replace(**changes))


st.title("Tutorial: decoding with a linear SVC")
st.markdown(
    "The steps of nilearn's decoding tutorial (*Haxby et al. 2001: face vs cat in the ventral temporal "
    "cortex*), in order. Each step shows the tutorial's code and its **live output on the data set loaded "
    "now**, and links to the page where you can change it."
)
dataset = datasets.current_dataset()
if dataset is None:
    st.page_link(DATA_PAGE, label="Go to the Data page to load a data set", icon=":material/database:")
    st.stop()

conditions = summaries.default_conditions(dataset)
mask_name = summaries.default_mask_name(dataset)
st.info(
    f"Data set: **{feedback.plain_markdown(dataset.title)}**. The tutorial decodes "
    f"**{feedback.plain_markdown(' vs '.join(conditions))}** in the mask **{feedback.plain_markdown(mask_name)}**."
)
if conditions != ["face", "cat"]:
    st.caption("This data set has no 'face' and 'cat' conditions; the walk-through uses its first two conditions.")

try:
    base_config = DecodingConfig.from_dict(
        {**state.default_config_values(), "conditions": conditions, "mask_name": mask_name}
    )
except Exception as err:
    feedback.show_error(err, "preparing the tutorial")
    st.stop()

# 1. The data
code = data_code(dataset, mask_name)
step(1, "Load the data",
     "A 4D functional image (x, y, z, time), a mask of the ventral temporal cortex, and a table that says "
     "which stimulus category each volume shows.",
     code["load"],
     (DATA_PAGE, "Choose another data set on the Data page"))
summary = summaries.dataset_summary(dataset)
st.markdown(f"Output: image of shape **{tuple(int(n) for n in dataset.shape)}**, "
            f"{summary['Runs']} runs, TR {summary['TR (s)']} s.")

# 2. Masking into a data matrix
step(2, "Turn the images into a data matrix",
     "The masker keeps the voxels inside the mask and z-scores each voxel's time series: one row per volume "
     "(sample), one column per voxel (feature).",
     'masker = NiftiMasker(mask_img=mask_filename, standardize="zscore_sample")\n'
     "fmri_masked = masker.fit_transform(fmri_filename)\nfmri_masked.shape",
     (CONFIGURE_PAGE, "Change the mask or the standardization on the Configure page"))
bar = st.progress(0.0, text="Reading the volumes")
try:
    masked = analysis.masked_data(dataset, mask_name, standardize=True,
                                  progress=feedback.progress_bar_callback(bar))
except Exception as err:
    bar.empty()
    feedback.show_error(err, "masking the data")
    st.stop()
bar.empty()
st.markdown(f"Output: `{tuple(int(n) for n in masked.shape)}`")

# 3. Labels
step(3, "The labels",
     "The behavioral table gives each volume's condition; its 'chunks' column gives the run.",
     code["labels"],
     (DATA_PAGE, "See the labels table and the timeline on the Data page"))
st.dataframe(summaries.condition_run_counts(dataset)[["total"]] if dataset.runs is not None
             else summaries.condition_run_counts(dataset))

# 4. Restrict to two conditions
step(4, f"Keep only {feedback.plain_markdown(' and '.join(conditions))}",
     "The tutorial decodes two categories; the other volumes (and rest) are dropped.",
     f"condition_mask = conditions.isin({list(conditions)!r})\n"
     "fmri_masked = fmri_masked[condition_mask]\nconditions = conditions[condition_mask]\n"
     + ("run_label = run_label[condition_mask]\n" if dataset.runs is not None else "")
     + "fmri_masked.shape",
     (CONFIGURE_PAGE, "Choose other conditions on the Configure page"))
selection = summaries.selection_summary(dataset, conditions, mask_name)
st.markdown(f"Output: `({selection.n_samples}, {selection.n_voxels})`")

# 5. Training accuracy
step(5, "Fit a linear SVC and predict the training data",
     "Predicting the data the classifier was fitted on gives a perfect-looking score. It is **meaningless**: "
     "with more voxels than needed, a linear classifier can fit any labelling of its training set, so this "
     "number says nothing about the brain.",
     'svc = SVC(kernel="linear")\nsvc.fit(fmri_masked, conditions)\n'
     "prediction = svc.predict(fmri_masked)\n(prediction == conditions).sum() / float(len(conditions))",
     (CONFIGURE_PAGE, "Pick 'Accuracy on the training data' on the Configure page"))
try:
    result = run_scheme(dataset, base_config, cv="train")
    st.markdown(f"Output: training accuracy **{result.mean_score:.3f}**")
except Exception as err:
    feedback.show_error(err, "fitting on the training data")

# 6. Hold-out
step(6, "Leave out the last 30 samples",
     "Train on all samples but the last 30 and test on those 30: a first honest estimate.",
     "svc.fit(fmri_masked[:-30], conditions[:-30])\nprediction = svc.predict(fmri_masked[-30:])\n"
     "(prediction == conditions[-30:]).sum() / float(len(conditions[-30:]))",
     (CONFIGURE_PAGE, "Set 'Hold out the last N samples' and N on the Configure page"))
try:
    result = run_scheme(dataset, base_config, cv="holdout", holdout_size=30)
    st.markdown(f"Output: accuracy on the 30 held-out samples **{result.mean_score:.3f}**")
except Exception as err:
    feedback.show_error(err, "holding out the last samples")

# 7. K-fold loop
step(7, "A 5-fold cross-validation loop",
     "Every sample is tested once, by a classifier that did not see it.",
     "cv = KFold(n_splits=5)\nfor fold, (train, test) in enumerate(cv.split(conditions), start=1):\n"
     "    svc.fit(fmri_masked[train], conditions[train])\n"
     "    prediction = svc.predict(fmri_masked[test])\n"
     "    print(f\"CV Fold {fold:01d} | Prediction Accuracy: {(prediction == conditions[test]).sum() / float(len(conditions[test])):.2f}\")",
     (CONFIGURE_PAGE, "Set 'K-fold' and K on the Configure page"))
try:
    result = run_scheme(dataset, base_config, cv="kfold", n_folds=5)
    st.markdown("Output:\n\n" + "\n".join(
        f"- CV Fold {fold} | Prediction Accuracy: {score:.2f}" for fold, score in enumerate(result.fold_scores, start=1)
    ))
except Exception as err:
    feedback.show_error(err, "running the 5-fold loop")

# 8. cross_val_score
step(8, "The same with cross_val_score",
     "scikit-learn runs the loop for you (its default split: 5 stratified folds).",
     "cv_score = cross_val_score(svc, fmri_masked, conditions)\nprint(cv_score)",
     (CONFIGURE_PAGE, "Pick scikit-learn's default split on the Configure page"))
try:
    result = run_scheme(dataset, base_config, cv="default")
    st.markdown(f"Output: `{scores_line(result)}`")
except Exception as err:
    feedback.show_error(err, "running cross_val_score")

# 9. Leave one run out
step(9, "Leave one run out",
     "Volumes of one run are correlated in time; testing on a whole run the classifier never saw is the "
     "honest scheme for fMRI. The runs are the groups.",
     "cv = LeaveOneGroupOut()\ncv_score = cross_val_score(svc, fmri_masked, conditions, cv=cv,\n"
     "                           groups=run_label)\nprint(cv_score)",
     (CONFIGURE_PAGE, "Pick 'Leave one run out' on the Configure page"))
loro = None
try:
    loro = run_scheme(dataset, base_config, cv="leave-one-run-out")
    st.markdown(f"Output: `{scores_line(loro)}`")
except Exception as err:
    feedback.show_error(err, "leaving one run out")

# 10. Weights
step(10, "The weights, back in the brain",
     "The classifier's weights have one value per voxel; the masker puts them back into a brain image, "
     "shown over the anatomy in the tutorial's 'yx' view.",
     "coef_ = svc.coef_\nprint(coef_.shape)\ncoef_img = masker.inverse_transform(coef_)\n"
     f'plot_stat_map(coef_img, bg_img={code["background"]}, title="SVM weights", display_mode="yx")',
     (RESULTS_PAGE, "Explore the weight map (threshold, cuts, other views) on the Results page"))
if loro is not None:
    st.markdown(f"Output: `{tuple(int(n) for n in loro.weights.shape)}`")
    try:
        weight_img = map_views.map_image(loro, "weights", 0)
        st.plotly_chart(
            plotting.plot_stat_slices(weight_img, dataset.anat_img, display_mode="yx", title="SVM weights"),
            key=state.W_TUTORIAL_WEIGHTS_CHART, width="stretch",
        )
    except Exception as err:
        feedback.show_error(err, "drawing the weights")
