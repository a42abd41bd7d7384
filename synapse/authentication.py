"""API authentication: sessions for the pages' own calls, tokens for integrations.

"Authorization: Bearer <key>" takes a named token from the API tokens page
(synapse.models.ApiToken) or, for integrations written against seed 001, a
rest_framework.authtoken key; "Authorization: Token <key>" takes the latter.
"""
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


class BearerTokenAuthentication(TokenAuthentication):
    """Named API tokens (and the older authtoken keys), sent as "Authorization: Bearer <key>"."""

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        from synapse.services import api_token_authenticate

        token = api_token_authenticate(key=key)
        if token is not None:
            return token.user, token
        try:
            return super().authenticate_credentials(key)
        except AuthenticationFailed:
            raise AuthenticationFailed("Invalid token (unknown, revoked, or its user is inactive).") from None


# Bearer comes first so an unauthenticated call gets 401 with
# "WWW-Authenticate: Bearer" rather than the session class's bare 403.
API_AUTHENTICATION_CLASSES = [BearerTokenAuthentication, TokenAuthentication, SessionAuthentication]
