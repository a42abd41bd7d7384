"""API authentication: sessions for the pages' own calls, tokens for integrations.

DRF's TokenAuthentication reads "Authorization: Token <key>"; integrations
written against seed 001 send "Authorization: Bearer <key>", so both are
accepted with the same tokens (rest_framework.authtoken).
"""
from rest_framework.authentication import SessionAuthentication, TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """The same tokens as TokenAuthentication, sent as "Authorization: Bearer <key>"."""

    keyword = "Bearer"


# Bearer comes first so an unauthenticated call gets 401 with
# "WWW-Authenticate: Bearer" rather than the session class's bare 403.
API_AUTHENTICATION_CLASSES = [BearerTokenAuthentication, TokenAuthentication, SessionAuthentication]
