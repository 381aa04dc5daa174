"""Changing a converted TFLite model: unpacked into the schema's objects, edited, packed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["edited"]


def edited(content: bytes, edit: Callable[[Any], None]) -> bytes:
    """``content`` after ``edit`` changed its ``ModelT`` (the schema's object tree) in place."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    edit(model)
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
