"""Generated sentences for name tagging in which a word's tag depends on the word after it.

The curriculum's example: in "He said, Teddy Roosevelt was a great President" the word
"Teddy" is part of a person's name; in "He said, Teddy bears are on sale" it is not, and
only the words *after* it tell. ``tagging_data`` generates sentences of that kind from word
lists written for this course (nothing is downloaded). Each sentence is

    <opening> <first word> <second word> <ending>

* the pair is a person, ``teddy roosevelt`` (both words tagged 1), or a thing named by
  the same first word, ``teddy bears`` (both tagged 0), or an unambiguous name,
  ``harry potter`` (1 1);
* the opening (``he said ,``) and the ending (``came to town``) are drawn from short
  phrases that fit a person and a thing alike: they tell nothing about the tags.

So a tagger that reads left to right cannot know, at ``teddy``, whether a surname follows:
on the ambiguous first words it can only guess. A tagger that also reads right to left can.
Every sentence has exactly ``T_x`` words (the opening and the ending are picked to fit), so
batches need no padding.

What this module leaves out: turning words into indices and one-hot batches (the notebook
does it with the learner's own ``one_hot_batch`` from assignment 01), and any real text.
"""
from __future__ import annotations

import numpy

# A first name that is also the first word of an ordinary noun phrase, and that word's usual second word.
AMBIGUOUS = {"teddy": "bears", "grace": "period", "rose": "garden", "jack": "knife",
             "bill": "payment", "frank": "talk", "amber": "light", "will": "power"}
UNAMBIGUOUS = ("harry", "hermione", "ada", "alan", "marie", "luna")      # always first names
SURNAMES = ("roosevelt", "hopper", "kelly", "london", "murray", "sinatra", "potter", "turing")

OPENINGS = [                     # they fit "teddy roosevelt" and "teddy bears" alike
    "", "yesterday", "today", "apparently", "look", "he said", "she said", "i think", "they say", "look ,",
    "he said ,", "she told us", "i heard that", "in the news", "we all know", "as everyone knows",
    "believe it or not", "in the news today", "and then , suddenly", "as we all know",
]
ENDINGS = [
    "came today", "is here", "was there", "looked great", "came to town", "was on television", "made us laugh",
    "is very popular", "was on the radio", "came to our school", "made everyone very happy", "is in the news",
    "came to town on sunday", "was a big hit here", "is on the front page", "was the talk of the town",
    "came all the way from paris",
]
PAIR_KINDS = ("person", "thing", "plain name")
PAIR_PROBABILITIES = (0.4, 0.4, 0.2)


def _by_length(phrases: list) -> dict:
    """{number of words: [the phrases of that many words, as lists of words]}."""
    groups: dict = {}
    for phrase in phrases:
        groups.setdefault(len(phrase.split()), []).append(phrase.split())
    return groups


_OPENINGS, _ENDINGS = _by_length(OPENINGS), _by_length(ENDINGS)

TAGGING_VOCAB = sorted({word for phrase in OPENINGS + ENDINGS for word in phrase.split()}
                       | set(AMBIGUOUS) | set(AMBIGUOUS.values()) | set(UNAMBIGUOUS) | set(SURNAMES))
"""Every word the sentences use, sorted: index ``i`` of a one-hot vector is ``TAGGING_VOCAB[i]``."""


def tagging_data(n: int, T_x: int = 8, seed: int = 0):
    """``n`` sentences of ``T_x`` words: ``(sentences, tags)``.

    ``sentences`` is a list of ``n`` lists of words; ``tags`` a NumPy int array ``(n, T_x)``,
    1 where the word is part of a person's name. ``T_x`` can be 4 to 12.
    """
    lengths = [(k, T_x - 2 - k) for k in sorted(_OPENINGS) if T_x - 2 - k in _ENDINGS]
    if not lengths:
        raise ValueError(f"T_x = {T_x} is out of range: the sentences have 4 to 12 words.")
    rng = numpy.random.default_rng(seed)
    sentences, tags = [], numpy.zeros((n, T_x), dtype=int)
    for i in range(n):
        n_open, n_end = lengths[rng.integers(len(lengths))]
        opening = _OPENINGS[n_open][rng.integers(len(_OPENINGS[n_open]))]
        ending = _ENDINGS[n_end][rng.integers(len(_ENDINGS[n_end]))]
        kind = PAIR_KINDS[rng.choice(len(PAIR_KINDS), p=PAIR_PROBABILITIES)]
        first = (UNAMBIGUOUS[rng.integers(len(UNAMBIGUOUS))] if kind == "plain name"
                 else list(AMBIGUOUS)[rng.integers(len(AMBIGUOUS))])
        second = AMBIGUOUS[first] if kind == "thing" else SURNAMES[rng.integers(len(SURNAMES))]
        sentences.append(opening + [first, second] + ending)
        if kind != "thing":
            tags[i, n_open:n_open + 2] = 1
    return sentences, tags
