"""The steps of each phase of a report's workflow, one module per phase.

Each module holds a mixin with the phase's coroutine (what the workflow does
while the report is in that phase) and the Updates people send in it, with
their validators. `workflows.temporal.report_workflow.ReportTestWorkflow`
combines them and is the one place that orders the phases. Like every
workflow module, these import only temporalio, the standard library and
contracts: they run in Temporal's sandbox and must be deterministic.

- ``base``: what every phase uses (activities with the phase's timeouts, claims)
- ``reviews``: submit and decide a version (Planning, Scoping, Sample Selection, …)
- ``planning``, ``profiling``, ``scoping``, ``sampling``, ``data_owners``,
  ``requests``, ``test_execution``: one per phase
"""
