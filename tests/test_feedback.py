"""The feedback page: ``FeedbackExporter`` writes the page nbconvert's HTMLExporter writes.

Both exporters render the same notebook, HTMLExporter sanitising as ours does (its
``sanitize_html``, with the course's ``clean_html`` filter), and the two pages must hold
the same elements, the same attributes (alt texts included) and the same text; what may
differ is the random id the template gives each widget view's element, and our
Content-Security-Policy. The last test renders what a hostile student writes. Two notebooks:
one built here with every way an image can come with or without alternative text, and
(slow) the feedback of every assignment's solution from the grading run of
tests/conftest.py, which nbgrader writes again here with nbconvert's own exporter.
"""
import difflib
import itertools
import re
import shutil

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.course import assignment_names, nbgrader_api, nbgrader_config, notebook_names
from autograder.feedback import CSP, NO_ALT_TEXT, FeedbackExporter, clean_html

CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _elements(html: str) -> list[str]:
    """The page as indented lines, one per element or text, each element's attributes in name order,
    and every uuid4 (the template's ids for widget views) written as UUID4."""
    soup = BeautifulSoup(UUID4.sub("UUID4", html.replace(CSP_META, "", 1)), "html.parser")
    for tag in soup.find_all(True):
        tag.attrs = dict(sorted(tag.attrs.items()))
    return soup.prettify().splitlines()


def _differences(ours: str, theirs: str) -> str:
    """The first lines of a diff between the two pages' elements, each cut to 200 characters; '' if none."""
    diff = itertools.islice(difflib.unified_diff(
        _elements(ours), _elements(theirs), "FeedbackExporter", "HTMLExporter", lineterm="", n=2), 40)
    return "\n".join(line[:200] for line in diff)


def _image(data: dict, **metadata) -> nbformat.NotebookNode:
    return new_output("display_data", data=data, metadata=metadata)


PNG, JPEG = {"image/png": "iVBORw0KGgo="}, {"image/jpeg": "/9j/4AAQSkZJRg=="}
SVG = {"image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'}


def test_images_get_the_alt_texts_htmlexporter_gives_them():
    cells = [
        new_markdown_cell("A figure in Markdown: ![loss curve](data:image/png;base64,iVBORw0KGgo=)"),
        new_code_cell("png()", outputs=[_image(PNG)]),
        new_code_cell("jpeg()", outputs=[_image(JPEG)]),
        new_code_cell("svg()", outputs=[_image(SVG)]),
        new_code_cell("svg_with_alt()", outputs=[_image(SVG, alt="a square")]),
        new_code_cell("alt_per_type()", outputs=[_image(PNG, **{"image/png": {"alt": "loss per epoch"}})]),
        new_code_cell("alt_top_level()", outputs=[_image(JPEG, alt="gradient norms")]),
        new_code_cell("empty_alt()", outputs=[_image(PNG, **{"image/png": {"alt": ""}})]),
        new_code_cell("cell_alt()", metadata={"alt": "the cell's description"}, outputs=[_image(PNG)]),
        new_code_cell("empty_cell_alt()", metadata={"alt": ""}, outputs=[_image(PNG)]),
        new_code_cell("html()", outputs=[_image({"text/html": '<img src="x.png" alt="given">'})]),
        new_code_cell("both()", outputs=[_image(PNG | {"text/plain": "<Figure>"}), new_output(
            "error", ename="ValueError", evalue="bad shape", traceback=["ValueError: bad shape"])]),
    ]
    nb = new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    ours, _ = FeedbackExporter(template_name="classic").from_notebook_node(nb)
    theirs, _ = HTMLExporter(template_name="classic", sanitize_html=True,
                             filters={"clean_html": clean_html}).from_notebook_node(nb)
    differences = _differences(ours, theirs)
    assert not differences, "the pages differ\n" + differences
    assert ours.count(f'alt="{NO_ALT_TEXT}"') == 6  # png(), jpeg(), svg(), svg_with_alt(), empty_alt(), both()


@pytest.mark.slow
def test_feedback_pages_match_nbconverts_html_exporter(graded_examples, tmp_path):
    assert nbgrader_config().GenerateFeedback.exporter_class == "autograder.feedback.FeedbackExporter"
    shutil.copy(graded_examples.out / "gradebook.db", tmp_path / "gradebook.db")
    config = nbgrader_config(autograded_directory=graded_examples.out / "autograded",
                             feedback_directory=tmp_path / "feedback", db_url=f"sqlite:///{tmp_path / 'gradebook.db'}")
    config.GenerateFeedback.exporter_class = HTMLExporter
    config.HTMLExporter.sanitize_html = True
    config.HTMLExporter.filters = {"clean_html": "autograder.feedback.clean_html"}
    api = nbgrader_api(config)
    images = 0
    for assignment in assignment_names():
        assert api.generate_feedback(assignment, "solution", force=True)["success"], assignment
        for notebook in notebook_names(assignment):
            ours = (graded_examples.out / "feedback" / "solution" / assignment / f"{notebook}.html").read_text()
            theirs = (tmp_path / "feedback" / "solution" / assignment / f"{notebook}.html").read_text()
            differences = _differences(ours, theirs)
            assert not differences, f"{assignment}/{notebook}: the pages differ\n" + differences
            images += ours.count(f'alt="{NO_ALT_TEXT}"')
    assert images, "no solution's feedback shows a figure, so no alt text was compared"


def test_what_a_student_writes_cannot_run_in_the_feedback_page():
    """Markdown and HTML outputs lose scripts, handlers and javascript: URLs; widget states and
    JavaScript outputs are left out; and the page forbids scripts whatever is left."""
    attacks = ['<script>alert("md")</script>', '<img src="x" onerror="alert(1)">', '<svg onload="alert(2)"></svg>',
               '<iframe src="javascript:alert(3)"></iframe>', '[link](javascript:alert(4))',
               '<a href="data:text/html,<script>alert(5)</script>">d</a>', '<b onclick="alert(6)">b</b>']
    cells = [new_markdown_cell(f"Fine **text** {attack}") for attack in attacks]
    cells.append(new_code_cell("x", outputs=[_image({"text/html": '<b onmouseover="alert(7)">x</b><script>alert(8)</script>',
                                                     "application/javascript": "alert(9)"})]))
    nb = new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    html, _ = FeedbackExporter(template_name="classic").from_notebook_node(nb)
    body = html[html.index("<body"):]
    assert "alert(" not in body and "javascript:" not in body
    assert body.count("<strong>text</strong>") == len(attacks), "ordinary Markdown still renders"
    head = html[:html.index("<body")]
    assert head.index(CSP_META) < head.index("<script"), "the policy comes before the template's own scripts"
    assert "script-src 'none'" in CSP and "default-src 'none'" in CSP
