from synapse.roles import Role, user_roles


def roles(request):
    held = user_roles(getattr(request, "user", None))
    return {"user_roles": held, "Role": Role}
