"""OpenAI-compatible chat completions as an LLM provider (OpenAI itself or a local server)."""
from __future__ import annotations

from cycles.llm.base import HTTPChatProvider, LLMBadResponseError


class OpenAIProvider(HTTPChatProvider):
    """POST {base}/chat/completions in JSON mode; the answer is choices[0].message.content."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-4o-mini"

    def complete(self, *, system: str, prompt: str) -> str:
        payload = self.post_json(
            f"{self.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            body={
                "model": self.model,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                "response_format": {"type": "json_object"},
                "temperature": 0,
            },
        )
        choices = payload.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        refusal = message.get("refusal") if isinstance(message, dict) else None
        if refusal:
            raise LLMBadResponseError(f"openai: the model refused: {refusal}")
        raise LLMBadResponseError("openai: the answer has no choices[0].message.content.")
