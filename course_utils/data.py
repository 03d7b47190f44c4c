"""Text given to the exercises: tokenizers, the reserved tokens, and small corpora.

Only the parts students do not write themselves live here. Building a vocabulary,
encoding a sentence with ``<UNK>``/``<EOS>``, one-hot encoding a batch with a mask and
decoding it back are assignment 01's exercises, so they are deliberately absent.

The corpora are written for this course (no download): ``NOTATION_SENTENCES`` is a
few dozen short sentences in the spirit of the lecture's running example, with the
person-name words listed in ``PERSON_NAMES``.
"""
from __future__ import annotations

import re

UNK = "<UNK>"  # a word that is not in the vocabulary
EOS = "<EOS>"  # the end of a sentence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize_words(text: str) -> list[str]:
    """Lower-case words and punctuation marks, in order: "Harry's wand." -> ["harry's", "wand", "."]."""
    return _WORD.findall(text.lower())


def tokenize_chars(text: str) -> list[str]:
    """Characters, newlines included (a character model's <EOS> is the newline)."""
    return list(text)


# The lecture's running example for notation and name tagging.
EXAMPLE_SENTENCE = "Harry Potter and Hermione Granger invented a new spell."

PERSON_NAMES = frozenset({
    "harry", "potter", "hermione", "granger", "ron", "weasley", "albus", "dumbledore",
    "teddy", "roosevelt", "ada", "lovelace", "alan", "turing", "grace", "hopper",
    "marie", "curie", "luna", "lovegood",
})

NOTATION_SENTENCES = [
    EXAMPLE_SENTENCE,
    "Ron Weasley and Harry Potter found a new book.",
    "Hermione read the book in the library.",
    "Albus Dumbledore gave Harry a cloak.",
    "The cat sat on the mat.",
    "The cats, which already ate, were full.",
    "The cat, which already ate, was full.",
    "He said, Teddy Roosevelt was a great President.",
    "He said, Teddy bears are on sale.",
    "Ada Lovelace wrote the first program.",
    "Alan Turing asked whether machines can think.",
    "Grace Hopper found a moth in the computer.",
    "Marie Curie won two prizes.",
    "Luna Lovegood read a strange book.",
    "A new spell is a dangerous thing.",
    "The library was full of books.",
    "Harry and Ron ate in the great hall.",
    "The program was a new kind of book.",
    "Hermione Granger found the spell in a book.",
    "The great President read the book.",
]
