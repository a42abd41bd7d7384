"""Services (writes) of the cycles domain, one module per area:

- ``cycles``: LOBs, reports, cycles, cycle reports and their phase moves
- ``planning``: attributes and their LLM draft
- ``profiling``: population files and their profiles
- ``scoping``: scoping decisions
- ``artifacts``: a phase's working data frozen as version items
"""
