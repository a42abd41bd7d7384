"""The cycles API, one module per area (as cycles.views):

- ``common``: role refusals, a decision's response
- ``filters``: the lists' query filters (django-filter)
- ``profiling``: Data Profiling, phase states, data owner completion
- ``cycles``: LOBs, reports, cycles, cycle reports, attributes, scoping, submission
- ``sampling``: Sample Selection
- ``requests``: Data Owner Identification, Requests for Information and evidence
- ``urls``: the routes under /api/v1/
"""
