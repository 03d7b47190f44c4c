"""nbgrader configuration for this course (also read by `python -m autograder`).

solutions/ is nbgrader's source directory (the instructor's notebooks, with
solutions and hidden tests); assignments/ is the release directory (what students
get). Grading working folders and the SQLite gradebook live under grading/, which
git ignores; `python -m autograder grade ... --out DIR` puts them under DIR instead.

Grade with `python -m autograder grade`: it adds what nbgrader alone lacks (the guarded
kernel and the jail for student code, integrity checks, one time limit per submission;
see autograder/__init__.py). `nbgrader autograde` run by hand still works with this file,
but runs student code unconfined, in the same kernel as the tests.
"""
import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "grading", "gradebook.db")
# bugs.toml: the catalogue of typical student bugs, instructor-only (never released).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "bugs.toml"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell limit while autograding; `grade --timeout S` overrides it.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# No in-file history, and no start-up chatter from the kernel in the grader's output.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]

# Feedback: hidden tests are removed and their failures show only the message; the student's
# Markdown is sanitised; the page is nbconvert's HTML without its slow re-parse and with a
# Content-Security-Policy (autograder/feedback.py says why).
c.GenerateFeedback.exporter_class = "autograder.feedback.FeedbackExporter"
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.feedback.HideHiddenTests",
    "autograder.feedback.SanitizeMarkdown",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
