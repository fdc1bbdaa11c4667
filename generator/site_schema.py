"""The published JSON Schema of site.yaml, generated from the model so the two never drift."""

from __future__ import annotations

import json

from generator.model import Site

SCHEMA_PATH = "schema/site.schema.json"


def schema_bytes() -> bytes:
    schema = Site.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://litellm-gitops.example/schema/site.schema.json"
    schema["title"] = "LiteLLM GitOps site (sites/<site>/site.yaml)"
    return (json.dumps(schema, indent=2, sort_keys=True) + "\n").encode()
