"""Account pages: API tokens (a person's own; an Admin sees and revokes everyone's) and the password change."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from synapse.exceptions import ApplicationError
from synapse.roles import Role, has_role
from synapse.services import api_token_create, api_token_get, api_token_revoke, api_tokens_visible_to


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name",
                           help_text="What will use it, e.g. \"nightly export\". The key is shown once.")


@login_required
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ApplicationError as err:
            form.add_error("name", err.message)
        else:
            messages.success(request, f"Token {token.name!r} created. Copy the key now: it is not shown again.")
            form = ApiTokenForm()
    tokens = api_tokens_visible_to(user=request.user).order_by("user__username", "-created_at")
    return render(request, "accounts/api_tokens.html", {
        "form": form, "new_key": new_key, "tokens": tokens,
        "sees_all": request.user.is_superuser or has_role(request.user, Role.ADMIN),
    })


@login_required
@require_POST
def api_token_revoke_view(request, pk: int):
    try:
        token = api_token_revoke(user=request.user, token=api_token_get(user=request.user, pk=pk))
    except ApplicationError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, f"Token {token.name!r} revoked: calls with it now get 401.")
    return redirect("api-tokens")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("cycles:my-work")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password is changed.")
        return response
