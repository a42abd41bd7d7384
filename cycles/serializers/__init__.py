"""API shapes of the cycles domain, one module per area (as cycles.api).

Output serializers describe rows; input serializers only parse and type-check
a request. Rules (roles, phase locks, uniqueness that depends on state) live
in cycles.services, which the API views call with the validated data.
"""
