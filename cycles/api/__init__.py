"""The cycles API, one module per area (as cycles.views):

- ``common``: query filters, role refusals, a decision's response
- ``cycles``: LOBs, reports, cycles, cycle reports, attributes, scoping, submission
- ``sampling``: Sample Selection
- ``requests``: Data Owner Identification, Requests for Information and evidence
- ``urls``: the routes under /api/v1/
"""
