"""Unit tests of the chain's pure parts: messages, bridge, UI core and page, worker core."""
