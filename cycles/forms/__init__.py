"""Forms of the cycle pages, one module per area (as cycles.views): they parse and
validate input and catch what a person gets wrong on the page; the services
repeat every rule that matters and stay the authority.
"""
