"""Real first names for the character-level language model (assignment 03), with a fixed held-out split.

Where they come from: the first names of the 1990 United States Census (the Census
Bureau's files ``dist.female.first`` and ``dist.male.first``; a work of the US
government, in the public domain), as shipped inside the PyPI package ``names``
(version 0.3.0, by Trey Hunner, MIT licence), a runtime dependency of the course. So
the corpus is installed with the course and nothing is downloaded at run time.

``census_first_names()`` reads both files and returns the distinct names, lower-case
and sorted (5,163 of them, letters a-z only). ``split_held_out`` puts a name in the
held-out set when the CRC-32 checksum of its spelling is divisible by ``every``
(10: about one name in ten). The split depends on nothing but the name itself: no
random generator, no file order, the same on every machine and Python version.

What this module leaves out: the character vocabulary and the encoding into one-hot
batches (the notebook builds them, with the learner's own ``one_hot_batch``), the
frequency columns of the census files (every distinct name counts once), and the
census' last names.
"""
from __future__ import annotations

import importlib.resources
import zlib

CENSUS_FILES = ("dist.female.first", "dist.male.first")
EOS_CHAR = "\n"  # a character model's <EOS>: the end of a line ends the name


def census_first_names() -> list[str]:
    """The distinct first names of the 1990 US Census, lower-case, in alphabetical order."""
    try:
        package = importlib.resources.files("names")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "The names corpus ships with the PyPI package 'names', which is not installed. "
            "Install the course with `pip install -e .` (or just `pip install names==0.3.0`).") from None
    found = set()
    for filename in CENSUS_FILES:
        for line in package.joinpath(filename).read_text(encoding="ascii").splitlines():
            if line.strip():
                found.add(line.split()[0].lower())  # columns: NAME  frequency  cumulative  rank
    return sorted(found)


def is_held_out(name: str, every: int = 10) -> bool:
    """Whether ``name`` belongs to the held-out set (a fixed rule: its CRC-32 is divisible by ``every``)."""
    return zlib.crc32(name.encode("utf-8")) % every == 0


def split_held_out(names: list[str], every: int = 10) -> tuple[list[str], list[str]]:
    """(training names, held-out names), each in the order given; about 1/``every`` is held out."""
    if not isinstance(every, int) or every < 2:
        raise ValueError(f"every should be an integer of at least 2 (one name in `every` is held out), not {every!r}")
    train = [name for name in names if not is_held_out(name, every)]
    held_out = [name for name in names if is_held_out(name, every)]
    return train, held_out


def names_corpus(every: int = 10) -> tuple[list[str], list[str]]:
    """The census first names, split into (training, held-out) names."""
    return split_held_out(census_first_names(), every)


__all__ = ["EOS_CHAR", "census_first_names", "is_held_out", "split_held_out", "names_corpus"]
