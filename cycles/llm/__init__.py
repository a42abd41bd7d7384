"""LLM providers that draft a report's attributes from its field list.

``get_provider()`` returns the one settings.LLM_PROVIDER names: ``offline``
(deterministic heuristics, the default), ``anthropic`` (Messages API) or
``openai`` (chat completions; any OpenAI-compatible server through LLM_BASE_URL).
"""
from cycles.llm.base import (
    AttributeDraft,
    LLMBadResponseError,
    LLMError,
    LLMProvider,
    LLMTransientError,
    build_prompt,
    get_provider,
    parse_attribute_drafts,
)

__all__ = [
    "AttributeDraft",
    "LLMBadResponseError",
    "LLMError",
    "LLMProvider",
    "LLMTransientError",
    "build_prompt",
    "get_provider",
    "parse_attribute_drafts",
]
