"""Safe extraction of an uploaded ``.zip`` holding one subject's BIDS ``func/`` files.

A zip file is the user's bytes all the way down: its member names, its declared
sizes and its file types may all lie. `extract_bids_zip` therefore

* refuses, before anything is written, a member whose name is absolute, climbs out
  with ``..``, holds a backslash or a control character; a symbolic link, a device,
  a pipe or a socket; an encrypted member; a nested archive (by name);
* refuses an archive whose declared sizes or file count already exceed the limits;
* then streams every member through `zipfile`, counting the bytes it really inflates:
  the total over all members (``$DECODING_LAB_MAX_ZIP_BYTES``), the number of files
  (``$DECODING_LAB_MAX_ZIP_FILES``) and how many times one member expands
  (``$DECODING_LAB_MAX_ZIP_RATIO``) are checked while streaming, so a header that
  understates a member's size (a zip bomb) is caught by what is read, not by what is
  announced; a member whose content starts like a zip is refused too;
* writes into a temporary folder renamed into place only when every member passed,
  so a refused archive leaves nothing behind.

Files are placed by their BIDS names, not by the folders of the archive: a file named
``sub-01_ses-a_task-x_run-1_bold.nii.gz`` goes to ``sub-01/ses-a/func/``, whatever
folder it was zipped from, and any other file (``task-x_bold.json``,
``dataset_description.json``) to the root. The result is a BIDS folder that
`decoding_core.datasets.bids` reads like any other.

Every refusal is a `DecodingInputError` naming the uploaded zip.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from decoding_core import environment
from decoding_core.errors import DecodingInputError

#: Bytes read from a member at a time.
CHUNK_BYTES = 1024**2
#: A member is judged by its expansion ratio only past this many inflated bytes: a small
#: JSON sidecar of spaces may compress 200 times and harm nobody.
RATIO_FLOOR_BYTES = 1024**2
#: Names of archives that are refused inside the zip (a nested archive is not unpacked).
ARCHIVE_SUFFIXES = (".zip", ".jar", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".7z", ".rar")
#: What a zip's content starts with (local file header, empty archive, spanned archive).
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
#: Folders of the archive that are never extracted (macOS resource forks).
IGNORED_FOLDERS = ("__MACOSX",)
#: The datatype folders a subject's files may come from; anything else is placed in ``func/``.
DATATYPE_FOLDERS = ("func", "anat", "fmap")
_SUBJECT_FILE = re.compile(r"^sub-(?P<sub>[A-Za-z0-9]+)(?:_ses-(?P<ses>[A-Za-z0-9]+))?_")
_BOLD_FILE = re.compile(r"_bold\.nii(\.gz)?$")


@dataclass(frozen=True)
class ZipLimits:
    """What one uploaded zip may hold.

    Attributes
    ----------
    max_total_bytes : int
        Bytes extracted from all members together (what is really inflated, not what
        the headers say).
    max_files : int
        Files in the archive (folders not counted).
    max_ratio : float
        How many times one member may expand (inflated / compressed bytes), judged once
        it has inflated more than `RATIO_FLOOR_BYTES`.
    """

    max_total_bytes: int
    max_files: int
    max_ratio: float

    @classmethod
    def from_environment(cls) -> ZipLimits:
        """The limits of ``$DECODING_LAB_MAX_ZIP_BYTES``, ``_FILES`` and ``_RATIO`` (see `environment`)."""
        return cls(
            max_total_bytes=environment.read(environment.MAX_ZIP_BYTES),
            max_files=environment.read(environment.MAX_ZIP_FILES),
            max_ratio=float(environment.read(environment.MAX_ZIP_RATIO)),
        )


@dataclass(frozen=True)
class ExtractedBids:
    """A zip extracted as a BIDS folder.

    Attributes
    ----------
    root : pathlib.Path
        The BIDS root (holds ``sub-*/``).
    files : tuple of str
        Every extracted file, relative to ``root`` (POSIX separators), sorted.
    total_bytes : int
        Bytes written.
    """

    root: Path
    files: tuple
    total_bytes: int


def _shown(member_name: str, max_chars: int = 80) -> str:
    """A member name as a message may quote it: printable, bounded."""
    text = "".join(ch if ch.isprintable() else "?" for ch in member_name)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


class _Refusal:
    """Builds the messages of one archive, each naming it."""

    def __init__(self, display_name: str):
        self.zip = f"The zip '{display_name}'"

    def __call__(self, problem: str, advice: str = "") -> DecodingInputError:
        return DecodingInputError(f"{self.zip} {problem}" + (f" {advice}" if advice else ""))


def _is_ignored(parts: tuple) -> bool:
    # Finder's resource forks and hidden files (.DS_Store) carry nothing a data set needs.
    return parts[0] in IGNORED_FOLDERS or parts[-1].startswith(".")


def _checked_name(info: zipfile.ZipInfo, refuse: _Refusal) -> tuple:
    """The member's path parts, after refusing names that could land outside the folder."""
    name = info.filename
    shown = _shown(name)
    if "\\" in name or any(not ch.isprintable() for ch in name):
        raise refuse(f"holds a file whose name has a backslash or a control character ('{shown}'): it is refused.",
                     "Make the zip again with an ordinary zip tool.")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise refuse(f"holds a file with an absolute path ('{shown}'): such archives are refused.",
                     "Zip the func/ folder's files with paths relative to it.")
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if ".." in parts:
        raise refuse(f"holds a file whose path leaves the archive's folder ('{shown}'): such archives are refused.",
                     "Zip the func/ folder's files with paths relative to it.")
    if not parts:
        raise refuse(f"holds a member with an empty name ('{shown}').")
    return parts


def _check_member_type(info: zipfile.ZipInfo, refuse: _Refusal) -> None:
    """Refuse links, devices, pipes, sockets and encrypted members (Unix modes live in external_attr)."""
    shown = _shown(info.filename)
    mode = info.external_attr >> 16
    # Zips made without a file type (Windows tools, Python's writestr) leave S_IFMT at 0: ordinary files.
    if stat.S_ISLNK(mode):
        raise refuse(f"holds a symbolic link ('{shown}'): links are refused.",
                     "Zip the files themselves, not links to them.")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise refuse(f"holds a special file ('{shown}': a device, pipe or socket): only ordinary files are accepted.")
    if info.flag_bits & 0x1:
        raise refuse(f"holds an encrypted file ('{shown}'): encrypted archives are refused.")
    if info.filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise refuse(f"holds another archive ('{shown}'): nested archives are refused.",
                     "Put the BIDS files themselves in one zip.")


def _destination(parts: tuple) -> PurePosixPath:
    """Where a member goes in the BIDS folder: by its BIDS name, not by the archive's folders."""
    basename = parts[-1]
    match = _SUBJECT_FILE.match(basename)
    if match is None:
        return PurePosixPath(basename)
    datatype = parts[-2] if len(parts) > 1 and parts[-2] in DATATYPE_FOLDERS else "func"
    folder = PurePosixPath(f"sub-{match['sub']}")
    if match["ses"]:
        folder /= f"ses-{match['ses']}"
    return folder / datatype / basename


def _plan(archive: zipfile.ZipFile, limits: ZipLimits, refuse: _Refusal) -> list:
    """(member, destination) of every file to extract, after every check the headers allow."""
    plan, seen = [], {}
    declared_total = 0
    for info in archive.infolist():
        parts = _checked_name(info, refuse)
        _check_member_type(info, refuse)
        if info.is_dir() or _is_ignored(parts):
            continue
        destination = _destination(parts)
        if destination in seen:
            raise refuse(f"holds two files that both go to '{_shown(str(destination))}' "
                         f"('{_shown(seen[destination])}' and '{_shown(info.filename)}').",
                         "Zip one subject's files, each once.")
        seen[destination] = info.filename
        plan.append((info, destination))
        if len(plan) > limits.max_files:
            raise refuse(f"holds more than {limits.max_files:,} files: the limit is {limits.max_files:,} "
                         "(DECODING_LAB_MAX_ZIP_FILES).", "Zip only one subject's func/ files.")
        declared_total += info.file_size
        if declared_total > limits.max_total_bytes:
            raise refuse(f"would extract more than {_megabytes(limits.max_total_bytes)} "
                         "(DECODING_LAB_MAX_ZIP_BYTES).", "Zip only one subject's func/ files.")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _bomb(refuse, info, limits)
    return plan


def _bomb(refuse: _Refusal, info: zipfile.ZipInfo, limits: ZipLimits) -> DecodingInputError:
    return refuse(f"holds a file that expands more than {limits.max_ratio:g} times ('{_shown(info.filename)}', "
                  f"{_megabytes(max(info.compress_size, 0))} compressed): it looks like a zip bomb and is refused "
                  "(DECODING_LAB_MAX_ZIP_RATIO).")


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int,
                 limits: ZipLimits, refuse: _Refusal) -> int:
    """Stream one member to ``target``, counting what really inflates; returns the bytes written."""
    written = 0
    with archive.open(info) as source, open(target, "xb") as sink:
        while True:
            chunk = source.read(CHUNK_BYTES)
            if not chunk:
                return written
            if written == 0 and chunk.startswith(ZIP_MAGICS):
                raise refuse(f"holds another archive ('{_shown(info.filename)}' is a zip): nested archives "
                             "are refused.", "Put the BIDS files themselves in one zip.")
            written += len(chunk)
            if written > budget:
                raise refuse(f"extracts to more than {_megabytes(limits.max_total_bytes)} "
                             "(DECODING_LAB_MAX_ZIP_BYTES).", "Zip only one subject's func/ files.")
            if written > RATIO_FLOOR_BYTES and written > limits.max_ratio * max(info.compress_size, 1):
                raise _bomb(refuse, info, limits)
            sink.write(chunk)


def _extract(archive: zipfile.ZipFile, plan: list, folder: Path, limits: ZipLimits, refuse: _Refusal) -> int:
    total = 0
    for info, destination in plan:
        target = folder.joinpath(*destination.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            total += _copy_member(archive, info, target, limits.max_total_bytes - total, limits, refuse)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as err:
            if isinstance(err, DecodingInputError):
                raise
            # A wrong CRC, a truncated stream, a compression method zipfile lacks.
            raise refuse(f"could not be read at '{_shown(info.filename)}' ({type(err).__name__}: {err}).",
                         "The archive may be damaged: make it again and upload it again.") from None
    return total


def _check_holds_bold(files: list, refuse: _Refusal) -> None:
    if not any(_BOLD_FILE.search(name) and name.startswith("sub-") for name in files):
        raise refuse("holds no BIDS bold files (sub-<label>_..._bold.nii.gz).",
                     "Zip one subject's func/ folder: its *_bold.nii.gz, *_events.tsv and *_bold.json files.")


def extract_bids_zip(source, target, *, display_name: str, limits: ZipLimits | None = None) -> ExtractedBids:
    """Extract an uploaded zip of one subject's BIDS files into the new folder ``target``.

    Parameters
    ----------
    source : str or pathlib.Path
        The zip file on disk (the app's own copy of the upload).
    target : str or pathlib.Path
        A folder that must not exist yet; it appears only when the whole archive passed.
    display_name : str
        The uploaded file's name, as messages should say it (already safe to show).
    limits : ZipLimits, optional
        Default: `ZipLimits.from_environment`.

    Returns
    -------
    ExtractedBids
        ``root`` is ``target``; a ``dataset_description.json`` is added when the zip had
        none (BIDS readers expect one at the root).

    Raises
    ------
    DecodingInputError
        Not a zip; a hostile member (path outside the folder, link, device, nested
        archive, encrypted); beyond the limits (total bytes, file count, expansion
        ratio); damaged; or no bold file. ``target`` is then not created.
    FileExistsError
        When ``target`` exists (the caller chooses a fresh folder).
    """
    limits = limits or ZipLimits.from_environment()
    refuse = _Refusal(display_name)
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists: extract into a new folder.")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise refuse("is not a zip archive (or is damaged).",
                     "Upload a .zip of one subject's func/ files.") from None
    temporary = target.parent / f".{target.name}.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        with archive:
            plan = _plan(archive, limits, refuse)
            _check_holds_bold([str(destination) for _, destination in plan], refuse)
            temporary.mkdir(parents=True)
            total = _extract(archive, plan, temporary, limits, refuse)
        files = sorted(str(destination) for _, destination in plan)
        if "dataset_description.json" not in files:
            (temporary / "dataset_description.json").write_text(
                json.dumps({"Name": display_name, "BIDSVersion": "1.8.0"}))
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return ExtractedBids(root=target, files=tuple(files), total_bytes=total)
