"""nbgrader's configuration for the minidocker classroom labs (run nbgrader from this directory).

labs/source/<lab>/ holds the instructor notebooks (links to the course's notebooks/, so a lab and the
self-paced course are the same files); see labs/README.md for a class from start to finish.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the minidocker package beside labs/

from nbgrader.converters.generate_assignment import GenerateAssignment  # noqa: E402

from minidocker.lab.course import STUB, StripTestMarkers, TagExercises  # noqa: E402

c = get_config()  # noqa: F821 -- given by nbgrader when it reads this file

c.CourseDirectory.course_id = "minidocker"
c.CourseDirectory.root = HERE
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
c.ClearSolutions.code_stub = {"python": STUB}
# Cells start real containers, build images, wait for the OOM killer: far beyond nbgrader's 30 s.
c.Execute.timeout = 300
c.Execute.kernel_name = "python3"
# The learner's copy has no `# NBVAL_...` lines (they are for CI), and its exercise cells are tagged
# raises-exception (Run All goes on past a stub); everything else is nbgrader's.
c.GenerateAssignment.preprocessors = [StripTestMarkers, TagExercises] + list(
    GenerateAssignment.class_traits()["preprocessors"].default())
