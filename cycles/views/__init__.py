"""Pages of the cycles app, one module per area:

- ``pages``: my work, cycles, a report's Planning, Data Profiling and Scoping pages,
  and the helpers every page shares (object lookups, refusals, the audit trail)
- ``sampling``: Sample Selection
- ``requests``: Data Owner Identification, Requests for Information and evidence
"""
