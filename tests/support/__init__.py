"""Test helpers: a stand-in OpenRouter, process helpers, the stress scenario. Used by tests/ and bench/; not
part of the installed package, so the wheel carries no test server."""
