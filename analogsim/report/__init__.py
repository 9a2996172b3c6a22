"""Reports: PNG plots and an index.html drawn from a results file alone (never re-runs).

``write_report("results/demo.h5", "report/demo")`` reads the file with
:func:`analogsim.results.load_results`, draws one figure per run (:mod:`.plots`) and writes a
page that links them with the tables, the configs and the lineage (:mod:`.page`).
"""

from analogsim.report.page import write_report as write_report
