"""The feedback a student receives: their results, never the hidden tests.

nbgrader's own feedback shows the autograded notebook as it ran, hidden tests
included (autograding restores them into the test cells). Two things keep them out:

* while grading, ``autograder.guard`` runs each hidden-test block apart: what it prints
  is dropped and a failure becomes one line, "Hidden tests failed. Hint: ..."
  (``HiddenTestsFailed``), so no hidden code, expected value or traceback reaches the
  notebook's outputs; a block that passes prints "hidden tests passed";
* ``HideHiddenTests`` runs in ``GenerateFeedback`` (see nbgrader_config.py): it deletes
  each hidden-test region from the cell source, leaves a note in its place, and cuts
  every error of such a cell down to its name and message (no traceback lines).

So the student sees the visible tests' results with their messages and, for the
hidden tests, only whether they passed and a hint.

The page holds what the student wrote (Markdown, outputs), so it is sanitised as
nbviewer does it (nbconvert's ``sanitize_html``: HTML outputs go through the
``clean_html`` filter, here ``clean_html`` below, with nh3, and JavaScript outputs and
widget states are left out). nbgrader's feedback template renders Markdown cells itself,
without that filter, so ``SanitizeMarkdown`` (a preprocessor of ``GenerateFeedback``)
renders each Markdown cell to HTML and cleans it first. The page also
carries a Content-Security-Policy that lets no script run and nothing load from
elsewhere (``CSP``), whatever slipped through. MathJax, jQuery and RequireJS, which the
classic template loads from a CDN, are blocked by it too: formulas show as their LaTeX.

The page is written by ``FeedbackExporter`` (``GenerateFeedback.exporter_class``):
nbconvert's HTML exporter without its last step, a re-parse of the whole page, and
with its templates compiled once per process: feedback for 02 went from 0.62 to 0.18 s.
"""
from __future__ import annotations

import re

import nh3
from traitlets import Bool, default
from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters import Highlight2HTML, get_metadata
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

PRE = re.compile(r"<pre\b.*?</pre>", re.S)
CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "frame-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:")
HIDDEN_NOTE = ("# Hidden tests (other inputs) ran here after the visible ones; their code is not shown.\n"
               "# The output below says whether they passed and, if not, gives a hint.")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """nh3's attribute filter: an image may be embedded (``data:``), a link may not point at data."""
    if name in ("href", "src") and value.strip().lower().startswith("data:") and tag != "img":
        return None
    return value


def clean_html(html: str) -> str:
    """HTML a student wrote, with only ammonia's safe tags and attributes (no script, no
    event handler, no javascript: URL), class names kept for the page's own styles."""
    return nh3.clean(str(html), attributes={**nh3.ALLOWED_ATTRIBUTES, "*": {"class", "title", "lang"}},
                     url_schemes={"http", "https", "mailto", "data"}, attribute_filter=_attribute)


class SanitizeMarkdown(Preprocessor):
    """Each Markdown cell as its rendered HTML, cleaned (``clean_html``): nbgrader's feedback
    template renders Markdown again, and HTML blocks pass through Markdown unchanged. A blank
    line would end such a block, so newlines inside ``<pre>`` are written as ``&#10;``."""

    enabled = Bool(True)   # nbgrader registers it by name, and nbconvert's preprocessors start disabled

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            from nbconvert.filters.markdown import markdown2html
            html = clean_html(markdown2html(cell.source))
            cell.source = PRE.sub(lambda match: match.group(0).replace("\n", "&#10;"), html)
        return cell, resources


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden tests from the feedback notebook and reduce their errors to a message."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        if not self._remove_hidden_test_region(cell):
            return cell, resources
        cell.source = cell.source.rstrip("\n") + "\n" + HIDDEN_NOTE
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


# nbconvert's words for an image without a description (HTMLExporter.from_notebook_node).
NO_ALT_TEXT = "No description has been provided for this image"
IMAGE_TYPES = ("image/png", "image/jpeg")  # the outputs the classic template gives an alt attribute
# The classic template writes an SVG output as an <img> with no alt attribute at all.
SVG_IMAGE = re.compile(r'(<div class="output_svg output_subarea[^"]*">\s*<img )(?=src=)')


class DescribeImages(Preprocessor):
    """Give each PNG or JPEG output that would be shown without alternative text nbconvert's
    placeholder text.

    The classic template writes ``alt`` from the output's metadata or else the cell's (the
    rule below is its own); an image that it would leave without one gets the placeholder,
    as HTMLExporter would give it after rendering. ``FeedbackExporter`` runs this before
    nbgrader's preprocessors, which add no images.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        for out in cell.get("outputs", []):
            for mimetype in IMAGE_TYPES:
                if mimetype not in out.get("data", {}):
                    continue
                if (get_metadata(out, "alt", mimetype) or get_metadata(cell, "alt")) is None:
                    out.setdefault("metadata", {}).setdefault(mimetype, {})["alt"] = NO_ALT_TEXT
        return cell, resources


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for the life of the process.

    nbgrader makes a new exporter, and so a new Jinja environment, for every student's
    feedback, which compiled nbconvert's templates again each time (0.07 s). Jinja
    compares each template's source with the checksum stored with its code, so an edited
    template is compiled afresh. The key is the template's name and file, not the
    environment's settings: only ``FeedbackExporter``'s environments, all alike, use it.
    """

    def __init__(self):
        self._bytecode = {}

    def load_bytecode(self, bucket):
        if bucket.key in self._bytecode:
            bucket.bytecode_from_string(self._bytecode[bucket.key])

    def dump_bytecode(self, bucket):
        self._bytecode[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTMLExporter without the BeautifulSoup pass that ends its conversion.

    After rendering, ``HTMLExporter.from_notebook_node`` (nbconvert 7) parses the whole
    page again with BeautifulSoup's pure-Python parser and writes it out, to add alt
    texts to images and ``tabindex`` to the cells of JupyterLab templates: 0.3 s for the
    0.5 MB feedback page of 02, and no setting turns it off. nbgrader's feedback
    template extends the classic template, which has no such cells; ``DescribeImages``
    sets the alt texts of PNG and JPEG outputs before rendering, and ``SVG_IMAGE`` those
    of SVG outputs after, so the page says the same (tests/test_feedback.py compares the
    two exporters' pages element by element). What it leaves out: an ``<img>`` that a
    student writes by hand into a Markdown cell or an HTML output keeps the alt text it
    has, if any.

    ``from_notebook_node`` repeats what HTMLExporter's does before rendering (its two
    filters), through nbconvert's private ``_init_resources`` and ``_nb_metadata``, and
    ``_create_environment`` (private too) adds ``COMPILED_TEMPLATES``; pyproject.toml
    keeps nbconvert below 8.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_preprocessor(DescribeImages(parent=self), enabled=True)

    @default("sanitize_html")
    def _sanitize(self):
        return True

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED_TEMPLATES
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        # HTMLExporter.from_notebook_node up to its rendering: its two filters.
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        self.register_filter("clean_html", clean_html)
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        html = html.replace("<head>", f'<head>\n<meta http-equiv="Content-Security-Policy" content="{CSP}">', 1)
        return SVG_IMAGE.sub(rf'\1alt="{NO_ALT_TEXT}" ', html), resources
