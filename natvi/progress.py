"""A progress bar for fits that take more than a moment (tqdm).

Shown by default when the output is a terminal or a Jupyter notebook, and only after
a second has passed, so quick fits stay silent; ``progress=False`` turns it off and
``progress=True`` forces it (e.g. when logging to a file).
"""

import sys

#: seconds before a bar appears, and between its refreshes
DELAY = 1.0
MIN_INTERVAL = 0.1


def interactive():
    """Is the output a terminal or a notebook?"""
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def progress_bar(progress, total):
    """A tqdm bar over ``total`` iterations, or None when ``progress`` says not to show one.

    Parameters
    ----------
    progress : bool or None
        True: show; False: do not; None: show when :func:`interactive`.
    total : int
        Maximum number of iterations.
    """
    if progress is None:
        progress = interactive()
    if not isinstance(progress, bool):
        raise ValueError(f"progress: expected True, False or None, got {progress!r}")
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="natvi", unit="it", delay=DELAY, mininterval=MIN_INTERVAL,
                leave=False, dynamic_ncols=True)


def report(bar, elbo, step_size):
    """Advance ``bar`` by one iteration and show the ELBO and the step size."""
    if bar is not None:
        bar.set_postfix(elbo=f"{elbo:.6g}", step=f"{step_size:.3g}", refresh=False)
        bar.update(1)
