"""The feedback page: ``FeedbackExporter`` writes the page nbconvert's HTMLExporter writes.

The grading run of tests/conftest.py wrote every assignment's feedback with the
course's exporter; here nbgrader writes the solution's feedback again with
nbconvert's own HTMLExporter, and the two pages must hold the same elements, the same
attributes (alt texts included) and the same text. The one thing that may differ is
the random id the template gives each widget view's element.
"""
import difflib
import itertools
import re
import shutil

import pytest
from bs4 import BeautifulSoup
from nbconvert.exporters import HTMLExporter

from autograder.course import assignment_names, nbgrader_api, nbgrader_config, notebook_names
from autograder.feedback import NO_ALT_TEXT

pytestmark = pytest.mark.slow

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _elements(html: str) -> list[str]:
    """The page as indented lines, one per element or text, each element's attributes in name order,
    and every uuid4 (the template's ids for widget views) written as UUID4."""
    soup = BeautifulSoup(UUID4.sub("UUID4", html), "html.parser")
    for tag in soup.find_all(True):
        tag.attrs = dict(sorted(tag.attrs.items()))
    return soup.prettify().splitlines()


def test_feedback_pages_match_nbconverts_html_exporter(graded_examples, tmp_path):
    shutil.copy(graded_examples.out / "gradebook.db", tmp_path / "gradebook.db")
    config = nbgrader_config(autograded_directory=graded_examples.out / "autograded",
                             feedback_directory=tmp_path / "feedback", db_url=f"sqlite:///{tmp_path / 'gradebook.db'}")
    config.GenerateFeedback.exporter_class = HTMLExporter
    api = nbgrader_api(config)
    images = 0
    for assignment in assignment_names():
        assert api.generate_feedback(assignment, "solution", force=True)["success"], assignment
        for notebook in notebook_names(assignment):
            ours = (graded_examples.out / "feedback" / "solution" / assignment / f"{notebook}.html").read_text()
            theirs = (tmp_path / "feedback" / "solution" / assignment / f"{notebook}.html").read_text()
            diff = list(itertools.islice(difflib.unified_diff(
                _elements(ours), _elements(theirs), "FeedbackExporter", "HTMLExporter", lineterm="", n=2), 40))
            assert not diff, f"{assignment}/{notebook}: the pages differ\n" + "\n".join(line[:200] for line in diff)
            images += ours.count(f'alt="{NO_ALT_TEXT}"')
    assert images, "no solution's feedback shows a figure, so no alt text was compared"
