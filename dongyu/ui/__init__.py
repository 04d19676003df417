"""The UI server's pure parts: accepting UI events, applying deltas, rendering the page."""
