"""The Anthropic Messages API as an LLM provider."""
from __future__ import annotations

from cycles.llm.base import HTTPChatProvider, LLMBadResponseError


class AnthropicProvider(HTTPChatProvider):
    """POST {base}/v1/messages; the answer is the first text block of `content`."""

    name = "anthropic"
    default_base_url = "https://api.anthropic.com"
    default_model = "claude-sonnet-4-5"
    api_version = "2023-06-01"

    def complete(self, *, system: str, prompt: str) -> str:
        payload = self.post_json(
            f"{self.base_url}/v1/messages",
            headers={
                "x-api-key": self.api_key,
                "anthropic-version": self.api_version,
                "content-type": "application/json",
            },
            body={
                "model": self.model,
                "max_tokens": self.max_tokens,
                "system": system,
                "messages": [{"role": "user", "content": prompt}],
            },
        )
        content = payload.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict) or block.get("type", "text") != "text":
                    continue
                if isinstance(block.get("text"), str):
                    return block["text"]
        raise LLMBadResponseError(
            f"anthropic: the answer has no text content (stop_reason={payload.get('stop_reason')!r})."
        )
