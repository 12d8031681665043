"""Daylite: an OpenAI-compatible LLM gateway that meters every call to the cent."""

__version__ = "0.1.0"
