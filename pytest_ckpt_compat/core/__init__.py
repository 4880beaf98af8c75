"""The core: errors, versions, the catalogue of units, the engine that plans and applies them, and
the helpers units share (``ops``). Pure Python over plain dicts; nothing here reads or writes files
or imports Lightning."""
