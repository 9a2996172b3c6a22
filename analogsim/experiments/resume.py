"""What a results file about to be resumed already holds, said in the user's terms.

``analogsim run`` on an existing results file of the same spec resumes it; before it does, it
says what was found: "12 of 16 sweep points done, training of seed 0 finished", rather than a
count that mixes measured points with training epochs.
"""

from __future__ import annotations

import re
from pathlib import Path

from analogsim.file_lock import ResultsLock
from analogsim.results import RunData, load_results, spec_fingerprint, stored_fingerprint

_TRAINING = re.compile(r"train_(?P<label>.+)_seed(?P<seed>-?\d+)")


def _training(label: str, seed: str) -> str:
    return f"training of seed {seed}" if label == "model" else f"training of {label} seed {seed}"


def _measured(name: str, run: RunData) -> str:
    """``12 of 16 sweep points done`` (a run written point by point), or ``budget finished``
    (a run written at once)."""
    what = name.replace("_", " ")
    done, total = int(run.done.sum()), int(run.done.size)
    if total == 1:
        return f"{what} {'finished' if done else 'not finished'}"
    return f"{done} of {total} {what} points done"


def describe_progress(path: str | Path) -> str:
    """The measured points and trainings finished in results file ``path``, in words."""
    measured, finished, unfinished = [], 0, []
    for name, run in load_results(path).runs.items():
        training = _TRAINING.fullmatch(name)
        if training is None:
            measured.append(_measured(name, run))
            continue
        epochs, done = int(run.done.size), int(run.done.sum())
        if done == epochs:
            finished += 1
            last_finished = _training(training["label"], training["seed"])
        else:
            unfinished.append(f"{_training(training['label'], training['seed'])}: {done} of "
                              f"{epochs} epochs done")
    if finished == 1:
        measured.append(f"{last_finished} finished")
    elif finished:
        measured.append(f"{finished} trainings finished")
    return ", ".join(measured + unfinished) or "nothing finished yet"


def resume_summary(path: str | Path, spec_text: str) -> str | None:
    """What an existing results file of this spec holds (None: there is none to resume).

    Raises:
        ResultsFileError: another run is writing ``path`` (refused before it is read), or it
            is not a readable analogsim results file.
    """
    path = Path(path)
    if not path.exists():
        return None
    ResultsLock(path).release()  # a file another run is writing is refused, not read half-made
    if stored_fingerprint(path) != spec_fingerprint(spec_text):
        return None  # another spec's: refused when the run opens it
    return describe_progress(path)
