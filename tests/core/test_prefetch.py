"""Reading the image while the command line imports: the same answers, one read, failures left to the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from decoding_core import cli, masking, prefetch
from decoding_core.datasets import load_files

from tests.conftest import REPO_ROOT


@pytest.fixture
def vt_decode_argv(haxby_vt_dir):
    return ["decode", "--func", str(haxby_vt_dir / "bold_vt.nii.gz"), "--labels", str(haxby_vt_dir / "labels.txt"),
            "--mask", str(haxby_vt_dir / "mask_vt.nii.gz"), "--conditions", "face", "cat",
            "--cv", "leave-one-run-out", "--json"]


def _answer(summary: dict) -> dict:
    """A JSON summary less its time."""
    return {key: value for key, value in summary.items() if key != "elapsed_seconds"}


@pytest.fixture(autouse=True)
def nothing_pending():
    yield
    prefetch.take()  # a test that failed half-way leaves no read for the next one


@pytest.mark.parametrize("argv, expected", [
    (["decode", "--func", "f.nii.gz", "--labels", "l.txt", "--mask", "m.nii.gz"], ("f.nii.gz", "m.nii.gz")),
    (["decode", "--func=f.nii.gz", "--mask=m.nii.gz", "--labels", "l.txt"], ("f.nii.gz", "m.nii.gz")),
    (["decode", "--func", "f.nii.gz", "--labels", "l.txt"], None),  # no mask: an EPI mask from the mean image
    (["decode", "--func", "f.nii.gz", "--mask", "m.nii.gz", "--smoothing", "6"], None),
    (["decode", "--func", "f.nii.gz", "--mask", "m.nii.gz", "--smoothing=6"], None),
    (["decode", "--func", "f.nii.gz", "--mask", "m.nii.gz", "--smooth", "6"], None),  # argparse's abbreviation
    (["decode", "--func", "f.nii.gz", "--mask", "m.nii.gz", "--seed", "0", "--scoring", "accuracy"],
     ("f.nii.gz", "m.nii.gz")),  # options that start alike but read nothing else
    (["decode", "--func", "f.nii.gz", "--mask", "m.nii.gz", "--config", "c.json"], None),
    (["decode", "--bids", "d", "--mask", "m.nii.gz"], None),
    (["searchlight", "--func", "f.nii.gz", "--mask", "m.nii.gz"], None),
    (["decode", "--func"], None),
    ([], None),
])
def test_only_a_plain_decode_of_ones_own_files_is_read_ahead(argv, expected):
    assert prefetch.files_to_read(argv) == expected


def test_the_read_ahead_voxels_are_those_the_decode_would_read(haxby_vt_dir):
    func, mask = haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "mask_vt.nii.gz"
    mask_img, raw = prefetch.masked_voxels(func, mask)
    dataset = load_files(func, haxby_vt_dir / "labels.txt", mask=mask)
    assert masking.raw_matrix_key("x", mask_img) == masking.raw_matrix_key("x", dataset.masks["uploaded"])
    np.testing.assert_array_equal(raw, masking.extract_masked_voxels(func, dataset.masks)["uploaded"])


def test_the_command_decodes_the_read_ahead_voxels_without_reading_them_again(vt_decode_argv, masked_voxel_reads, capsys):
    assert cli.main(vt_decode_argv) == 0
    alone = _answer(json.loads(capsys.readouterr().out))
    assert len(masked_voxel_reads) == 1

    prefetch.start(vt_decode_argv)
    assert cli.main(vt_decode_argv) == 0
    ahead = _answer(json.loads(capsys.readouterr().out))
    # The child's read is in its own process: this one read nothing more.
    assert len(masked_voxel_reads) == 1, "the command read the voxels itself instead of taking the read-ahead ones"
    assert ahead == alone


def test_the_child_process_is_gone_once_its_voxels_are_taken(vt_decode_argv):
    prefetch.start(vt_decode_argv)
    child = prefetch._pending.pid
    assert prefetch.take() is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # reaped: no zombie left behind
    assert prefetch.take() is None  # taken once


def test_a_command_that_stops_early_ends_the_child(vt_decode_argv):
    """An argument error exits before the voxels are taken: the child must not read on."""
    prefetch.start(vt_decode_argv)
    read = prefetch._pending
    read.stop()  # what the exit handler does
    with pytest.raises(ChildProcessError):
        os.waitpid(read.pid, os.WNOHANG)
    read.stop()  # twice is harmless (the exit handler after an explicit stop)


@pytest.mark.parametrize("sent", [b"", b'{"key": ["a", "b", nu', None], ids=["nothing", "half a line", "half the voxels"])
def test_a_child_stopped_half_way_leaves_the_command_to_read_itself(sent, vt_decode_argv, masked_voxel_reads,
                                                                     monkeypatch, capsys):
    def stopped_half_way(func, mask, write_end):
        with os.fdopen(write_end, "wb") as pipe:
            if sent is not None:
                pipe.write(sent)
                return
            mask_img, raw = prefetch.masked_voxels(func, mask)
            key = masking.raw_matrix_key("0" * 64, mask_img)
            pipe.write(json.dumps({"key": key, "sha256": "0" * 64, "shape": raw.shape}).encode() + b"\n")
            pipe.write(memoryview(raw).cast("B")[: raw.nbytes // 2])

    monkeypatch.setattr(prefetch, "_send", stopped_half_way)
    prefetch.start(vt_decode_argv)
    assert prefetch._pending is not None
    assert cli.main(vt_decode_argv) == 0
    assert json.loads(capsys.readouterr().out)["fold_scores"]
    assert len(masked_voxel_reads) == 1  # the command's own read


def _corrupt_func(tmp_path):
    path = tmp_path / "bold.nii.gz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _mask_on_another_grid(tmp_path):
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.uint8), np.eye(4)), path)
    return path


@pytest.mark.parametrize("break_it", ["corrupt image", "mask on another grid", "missing image"])
def test_a_failed_read_leaves_the_command_to_say_what_is_wrong(break_it, vt_decode_argv, tmp_path, capsys):
    argv = list(vt_decode_argv)
    if break_it == "corrupt image":
        argv[argv.index("--func") + 1] = str(_corrupt_func(tmp_path))
    elif break_it == "mask on another grid":
        argv[argv.index("--mask") + 1] = str(_mask_on_another_grid(tmp_path))
    else:
        argv[argv.index("--func") + 1] = str(tmp_path / "absent.nii.gz")
    status_alone = cli.main(argv)
    message_alone = capsys.readouterr().err

    prefetch.start(argv)
    status = cli.main(argv)
    message = capsys.readouterr().err
    assert status == status_alone == cli.EXIT_INPUT_ERROR
    assert message == message_alone
    assert message.startswith("error: ") and "Traceback" not in message


def test_python_m_decoding_core_gives_the_in_process_answer(vt_decode_argv, capsys):
    """The real entry point, which reads ahead, against ``main`` called directly, which does not."""
    assert cli.main(vt_decode_argv) == 0
    in_process = _answer(json.loads(capsys.readouterr().out))
    completed = subprocess.run([sys.executable, "-m", "decoding_core", *vt_decode_argv],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert _answer(json.loads(completed.stdout)) == in_process
    assert in_process["fold_scores"]  # the answer compared is a real one


def test_the_read_ahead_starts_before_any_heavy_import():
    """``python -m decoding_core`` forks before importing numpy or scikit-learn: the package and
    `prefetch` import neither, and the package's re-exports still work when asked for."""
    code = ("import sys, decoding_core, decoding_core.prefetch\n"
            "heavy = sorted(m for m in ('numpy', 'pandas', 'sklearn', 'nibabel') if m in sys.modules)\n"
            "from decoding_core import ESTIMATORS, DecodingConfig, DecodingInputError\n"
            "print(heavy, 'svc' in ESTIMATORS, DecodingConfig.__name__, DecodingInputError.__name__)\n")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["[]", "True", "DecodingConfig", "DecodingInputError"]


def test_an_unknown_name_of_the_package_is_an_attribute_error():
    import decoding_core

    with pytest.raises(AttributeError, match="no_such_name"):
        decoding_core.no_such_name  # noqa: B018
