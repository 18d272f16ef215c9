"""The format's single source of truth: the IR dataclasses, their JSON Schema (committed,
checked equal), and the platform's field types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cubebase.platform.fieldtypes import FIELD_TYPES
from cubebase.schema_defs import ir, json_schema, load_app
from cubebase.schema_defs.export import app_files, to_data

from .conftest import SALES

SCHEMA_FILE = Path(ir.__file__).parent / "app-format.schema.json"


def test_committed_json_schema_is_generated_from_the_ir():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json_schema(), (
        "app-format.schema.json is stale: regenerate it with "
        "python -c 'import json; from cubebase.schema_defs import json_schema; "
        "print(json.dumps(json_schema(), indent=2))' > cubebase/schema_defs/app-format.schema.json"
    )


def test_every_key_is_documented():
    for cls in (*ir.IR_CLASSES, ir.AppSpec):
        for f in ir.ir_fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"


def test_field_types_and_settings_match_the_platform():
    user_types = {n for n, t in FIELD_TYPES.items() if not t.system_column}
    assert set(ir.TYPE_SETTINGS) == user_types
    assert set(ir.FieldTypeName.__args__) == user_types
    for name, settings in ir.TYPE_SETTINGS.items():
        accepted = FIELD_TYPES[name].config_keys | {"indexed"}
        assert settings <= accepted, (name, settings - accepted)


def test_sample_app_files_are_valid_under_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in SALES.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert not list(validator.iter_errors(data)), path.name


def test_json_schema_refuses_what_the_loader_refuses():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    bad = [
        {"key": "t", "fields": [{"key": "a", "type": "text", "options": ["x"]}]},
        {"key": "t", "fields": [{"key": "a", "type": "select"}]},
        {"key": "t", "colour": "red"},
        {"app": "x", "workflows": [{"key": "w"}]},
        {"key": "T"},
    ]
    for doc in bad:
        assert list(validator.iter_errors(doc)), doc


def test_exported_files_of_the_sample_app_load_back_to_the_same_ir():
    app = load_app(SALES)
    files = app_files(app)
    again = load_app_from(files)
    assert to_data(again) == to_data(app)


def load_app_from(files: dict[str, str]):
    from cubebase.schema_defs.loader import Source, load_sources

    return load_sources([Source(f"x/{n}", t) for n, t in files.items()])
