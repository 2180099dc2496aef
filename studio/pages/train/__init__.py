"""Train page: start jobs from a preset with validated fields, stop and resume them, list every
run directory with its state, and watch live loss plots, progress, samples, health warnings,
configuration and log. Jobs are separate processes; the run directory is the truth.

:mod:`.form` the new job's fields and checks, :mod:`.runs` the runs table and its actions,
:mod:`.monitor` the live view of the selected runs, :mod:`.page` the page that ties them."""
from studio.pages.train.form import NewJobForm
from studio.pages.train.monitor import RunMonitor
from studio.pages.train.page import TrainPage
from studio.pages.train.runs import RunsBox

__all__ = ["TrainPage", "NewJobForm", "RunsBox", "RunMonitor"]
