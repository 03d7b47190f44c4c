"""Given data helpers; the exercises' own functions are deliberately not in course_utils."""
import course_utils.data as data


def test_tokenize_words_lowercases_and_splits_punctuation():
    assert data.tokenize_words("Harry's wand, a NEW spell.") == ["harry's", "wand", ",", "a", "new", "spell", "."]


def test_tokenize_chars_keeps_newlines():
    assert data.tokenize_chars("ab\nc") == ["a", "b", "\n", "c"]


def test_running_example_is_tagged_by_the_name_list():
    tokens = data.tokenize_words(data.EXAMPLE_SENTENCE)
    assert [t for t in tokens if t in data.PERSON_NAMES] == ["harry", "potter", "hermione", "granger"]


def test_no_exercise_solution_in_course_utils():
    exercise_names = {"build_vocabulary", "encode", "one_hot_batch", "decode_batch", "name_targets",
                      "parameter_shapes"}
    import course_utils
    import course_utils.backend
    import course_utils.checks
    import course_utils.gradcheck
    import course_utils.plots
    for module in (course_utils, course_utils.backend, course_utils.checks, course_utils.gradcheck,
                   course_utils.plots, data):
        assert not exercise_names & set(dir(module)), module.__name__
