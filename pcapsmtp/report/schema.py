"""The version of the JSON documents' contract, written into every document as
``schema_version`` and pinned by docs/schema/*.schema.json.

"MAJOR.MINOR": MINOR grows when fields are added (a reader of the older version still works),
MAJOR when a field is renamed, removed or changes its meaning.
"""

SCHEMA_VERSION = "1.1"
